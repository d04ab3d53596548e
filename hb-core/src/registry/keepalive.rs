//! One LeaseKeepAlive stream per connection, shared by every lease in the process.
//!
//! etcd's keepalive stream takes any lease id in each request and answers each request
//! with (id, ttl), in order per lease, so one task owns the stream and routes answers back
//! to whoever asked. Load on etcd is then exactly what the clients ask for: N leases at
//! TTL/3 each, over one HTTP/2 stream. The requests that arrive together (the keepalives
//! of one slot, `schedule`) are sent back to back, so that they leave in one write.
//!
//! A stream that stops answering without an error (etcd-io/etcd#10821, or a member frozen
//! by SIGSTOP) is caught by a deadline on every request: the oldest unanswered request past
//! its deadline makes the task drop the stream, fail everything pending, and open a new one
//! on the next request — on the next member: the stream talks to one member at a time
//! (`Connection::member`), and one that stalled or failed is left for the next, so a frozen
//! leader costs at most one keepalive deadline (TTL/3), well within the lease's TTL.

use std::collections::{HashMap, VecDeque};
use std::sync::Weak;
use std::time::Duration;

use etcd_client::{LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::connect::{describe, is_lease_not_found, is_token_error, Connection};

/// etcd's answer to one keepalive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The lease lives on with this many seconds.
    Alive { ttl_s: i64 },
    /// The lease does not exist any more.
    NotFound,
}

type Reply = oneshot::Sender<Result<Answer, String>>;

struct Request {
    lease: i64,
    deadline: Instant,
    reply: Reply,
}

pub(crate) struct KeepaliveMux {
    tx: mpsc::UnboundedSender<Request>,
}

impl KeepaliveMux {
    /// Starts the task that owns the stream; it ends when the connection is dropped.
    pub fn spawn(conn: Weak<Connection>) -> KeepaliveMux {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, rx));
        KeepaliveMux { tx }
    }

    /// Sends one keepalive for `lease` and waits for its answer, at most `timeout`.
    pub async fn keepalive(&self, lease: i64, timeout: Duration) -> Result<Answer, String> {
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        self.tx.send(Request { lease, deadline, reply }).map_err(|_| "keepalive stream closed".to_string())?;
        // The task enforces the deadline; this outer bound is a backstop.
        match tokio::time::timeout(timeout + Duration::from_millis(500), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("keepalive stream closed".to_string()),
            Err(_) => Err(format!("no keepalive answer within {} ms", timeout.as_millis())),
        }
    }
}

struct Stream {
    /// Which member it talks to.
    member: usize,
    keeper: LeaseKeeper,
    responses: LeaseKeepAliveStream,
}

async fn run(conn: Weak<Connection>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut stream: Option<Stream> = None;
    let mut pending: HashMap<i64, VecDeque<(Instant, Reply)>> = HashMap::new();
    let mut check = tokio::time::interval(Duration::from_millis(50));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            req = rx.recv() => {
                let Some(req) = req else { break };
                for req in gather(req, &mut rx).await {
                    send(&conn, &mut stream, &mut pending, req).await;
                }
            }
            msg = next_answer(&mut stream), if stream.is_some() => match msg {
                Ok(Some((lease, ttl_s))) => {
                    let answer = if ttl_s > 0 { Answer::Alive { ttl_s } } else { Answer::NotFound };
                    if let Some(queue) = pending.get_mut(&lease) {
                        // Answers for one lease come in request order: the oldest is answered.
                        if let Some((_, reply)) = queue.pop_front() {
                            let _ = reply.send(Ok(answer));
                        }
                        if queue.is_empty() {
                            pending.remove(&lease);
                        }
                    }
                }
                Ok(None) => {
                    drop_stream(&conn, &mut stream);
                    fail_all(&mut pending, "keepalive stream ended");
                }
                Err(e) => {
                    drop_stream(&conn, &mut stream);
                    fail_all(&mut pending, &format!("keepalive stream failed: {}", describe(&e)));
                    if is_token_error(&e) {
                        reauthenticate(&conn).await;
                    }
                }
            },
            _ = check.tick(), if !pending.is_empty() => {
                let now = Instant::now();
                let stalled = pending.values().any(|q| q.front().is_some_and(|(deadline, _)| *deadline <= now));
                if stalled {
                    // Silence past a deadline: the stream cannot be trusted any more.
                    drop_stream(&conn, &mut stream);
                    fail_all(&mut pending, "keepalive stream gave no answer in time");
                }
            }
        }
    }
}

/// `first` and every request that comes in the same turn of the runtime: the keepalives
/// of one slot (`schedule`) wake together, and sent back to back they leave in one write
/// (tonic encodes every queued message into one HTTP/2 DATA frame).
async fn gather(first: Request, rx: &mut mpsc::UnboundedReceiver<Request>) -> Vec<Request> {
    let mut batch = vec![first];
    loop {
        // Let the tasks woken with ours run first: they may have keepalives of their own.
        tokio::task::yield_now().await;
        let before = batch.len();
        while let Ok(req) = rx.try_recv() {
            batch.push(req);
        }
        if batch.len() == before {
            return batch;
        }
    }
}

/// Sends one keepalive on the stream, opening it if there is none.
async fn send(
    conn: &Weak<Connection>,
    stream: &mut Option<Stream>,
    pending: &mut HashMap<i64, VecDeque<(Instant, Reply)>>,
    req: Request,
) {
    if req.reply.is_closed() {
        return;
    }
    crate::metrics::get().keepalives_sent.inc();
    match stream.as_mut() {
        Some(s) => {
            // The keeper sends for its `id`; pointing it at each lease in turn is what
            // multiplexes every lease over this one stream.
            s.keeper.id = req.lease;
            if s.keeper.keep_alive().await.is_err() {
                leave_member(conn, s.member);
                *stream = None;
                fail_all(pending, "keepalive stream broke");
                let _ = req.reply.send(Err("keepalive stream broke".into()));
            } else {
                pending.entry(req.lease).or_default().push_back((req.deadline, req.reply));
            }
        }
        None => *stream = open(conn, req).await,
    }
}

async fn next_answer(stream: &mut Option<Stream>) -> Result<Option<(i64, i64)>, etcd_client::Error> {
    match stream.as_mut() {
        Some(s) => Ok(s.responses.message().await?.map(|r| (r.id(), r.ttl()))),
        None => std::future::pending().await,
    }
}

/// Opens the stream with `req`'s lease; its first answer is `req`'s answer.
async fn open(conn: &Weak<Connection>, req: Request) -> Option<Stream> {
    let Some(conn) = conn.upgrade() else {
        let _ = req.reply.send(Err("etcd connection closed".into()));
        return None;
    };
    let budget = req.deadline.saturating_duration_since(Instant::now());
    let (member, client) = match conn.member(budget).await {
        Ok(pair) => pair,
        Err(e) => {
            let _ = req.reply.send(Err(format!("open keepalive stream: {e}")));
            return None;
        }
    };
    let mut lease_client = client.lease_client();
    let budget = req.deadline.saturating_duration_since(Instant::now());
    let opened = tokio::time::timeout(budget, lease_client.keep_alive(req.lease)).await;
    // "Lease not found" is an answer; anything else leaves this member for the next.
    if !matches!(&opened, Ok(Ok(_))) && !matches!(&opened, Ok(Err(e)) if is_lease_not_found(e)) {
        conn.member_failed(member);
    }
    match opened {
        Ok(Ok((keeper, responses))) => {
            // The client library read the first answer itself: TTL > 0, the lease lives.
            let _ = req.reply.send(Ok(Answer::Alive { ttl_s: 1 }));
            Some(Stream { member, keeper, responses })
        }
        Ok(Err(e)) if is_lease_not_found(&e) => {
            let _ = req.reply.send(Ok(Answer::NotFound));
            None
        }
        Ok(Err(e)) => {
            let _ = req.reply.send(Err(format!("open keepalive stream: {}", describe(&e))));
            if is_token_error(&e) {
                let _ = conn.reauthenticate(budget.max(Duration::from_secs(1))).await;
            }
            None
        }
        Err(_) => {
            let _ = req.reply.send(Err("open keepalive stream: no answer in time".into()));
            None
        }
    }
}

/// Drops the stream and leaves its member for the next one.
fn drop_stream(conn: &Weak<Connection>, stream: &mut Option<Stream>) {
    if let Some(s) = stream.take() {
        leave_member(conn, s.member);
    }
}

fn leave_member(conn: &Weak<Connection>, member: usize) {
    if let Some(conn) = conn.upgrade() {
        conn.member_failed(member);
    }
}

async fn reauthenticate(conn: &Weak<Connection>) {
    if let Some(conn) = conn.upgrade() {
        let _ = conn.reauthenticate(Duration::from_secs(2)).await;
    }
}

fn fail_all(pending: &mut HashMap<i64, VecDeque<(Instant, Reply)>>, why: &str) {
    for (_, queue) in pending.drain() {
        for (_, reply) in queue {
            let _ = reply.send(Err(why.to_string()));
        }
    }
}
