//! `heartbeater elect`: campaign in an election and run COMMAND only while leader. The
//! command is stopped (SIGTERM, then SIGKILL after the grace) as soon as `check()` fails
//! — checked every few ms, so a lost lease stops it within that, well before etcd can
//! have given the lead to another candidate. Like `etcdctl elect`, but fenced.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hb_core::election::Token;
use hb_core::{Election, Options};

use crate::cli::ElectArgs;
use crate::event_line::print_event;
use crate::fail::{runtime, set, usage, CmdResult};
use crate::signals;

/// How often leadership is checked while COMMAND runs, and signals looked for.
const TICK: Duration = Duration::from_millis(5);

pub fn run(a: ElectArgs) -> CmdResult {
    signals::block_termination();
    let mut o = Options::new();
    set(&mut o, "endpoint", &a.endpoint)?;
    if let Some(ttl) = &a.ttl {
        set(&mut o, "ttl", ttl)?;
    }
    let grace = hb_core::config::parse_duration("grace", &a.grace)?;
    let election = Election::new(&o, &a.name, a.value.as_bytes())?;
    let json = a.json;
    election.events().set_callback(Box::new(move |ev| print_event(ev, json)))?;
    let mut child: Option<(Child, Token)> = None;
    let code = loop {
        if let Some(sig) = signals::wait(TICK) {
            eprintln!("heartbeater elect: {sig}, stopping");
            if let Some((c, _)) = child.take() {
                stop(c, grace);
            }
            break 0;
        }
        match child.as_mut() {
            None => match election.campaign(Duration::ZERO) {
                Ok(token) if election.check().is_ok() => child = Some((spawn(&a.command, token)?, token)),
                Ok(_) | Err(hb_core::Error::Timeout { .. }) => {}
                Err(e) => return Err(e.into()),
            },
            Some((c, token)) => {
                if let Some(status) = c.try_wait().map_err(|e| runtime(format!("wait for COMMAND: {e}")))? {
                    eprintln!("heartbeater elect: COMMAND exited ({status}); resigning");
                    break status.code().unwrap_or(1);
                }
                let still = election.check().is_ok() && election.token().ok() == Some(*token);
                if !still {
                    eprintln!("heartbeater elect: leadership lost; stopping COMMAND");
                    if let Some((c, _)) = child.take() {
                        stop(c, grace);
                    }
                }
            }
        }
    };
    election.stop(election.config().stop_timeout)?;
    Ok(code)
}

/// Starts COMMAND with the term's token in its environment. It gets the signals unblocked
/// (we block them for `sigtimedwait`) and dies with us, so no orphan keeps acting as leader.
fn spawn(command: &[String], token: Token) -> CmdResult<Child> {
    let (program, args) = command.split_first().ok_or_else(|| usage("elect: give COMMAND after --"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("HEARTBEATER_ELECTION_TOKEN", token.revision.to_string())
        .env("HEARTBEATER_ELECTION_LEASE", format!("{:x}", token.lease_id));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| runtime(format!("start COMMAND {program:?}: {e}")))?;
    eprintln!("heartbeater elect: leader (token {}), started COMMAND pid {}", token.revision, child.id());
    Ok(child)
}

/// SIGTERM, then SIGKILL once `grace` has passed.
fn stop(mut child: Child, grace: Duration) {
    // SAFETY: signalling our own child by its pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}
