//! `GET /v1/peers` (filtered, sorted, paginated) and `GET /v1/peers/{id}`: the same rows as
//! `peers()`, in the JSON shape of [`PeerInfo::to_json`].

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{error_response, ViewState};
use crate::events::State as PeerState;
use crate::peers::PeerInfo;

pub const DEFAULT_LIMIT: usize = 1000;
pub const MAX_LIMIT: usize = 10_000;

/// What a list request filters and sorts on: a peer of `peers()`, or a row that becomes
/// one (a monitor lists its table's rows and builds only the page's peers: a 100k-peer
/// table then costs a page, not 100k strings, per request).
pub trait Listed {
    fn id(&self) -> &str;
    fn service(&self) -> &str;
    fn label(&self, key: &str) -> Option<&str>;
    fn state(&self) -> PeerState;
    /// Larger is heard more recently.
    fn recency(&self) -> u64;
}

impl Listed for PeerInfo {
    fn id(&self) -> &str {
        &self.id
    }
    fn service(&self) -> &str {
        &self.service
    }
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
    fn state(&self) -> PeerState {
        self.state
    }
    fn recency(&self) -> u64 {
        self.last_seen_unix_ms
    }
}

/// One page of a list, as a view answers it.
pub struct Page {
    pub peers: Vec<PeerInfo>,
    /// How many peers matched in all.
    pub total: usize,
    /// When the rows the page was taken from were copied (a monitor shares one copy
    /// between requests for a short while: docs/http.md).
    pub as_of_unix_ms: u64,
}

impl<T: Listed> Listed for &T {
    fn id(&self) -> &str {
        (**self).id()
    }
    fn service(&self) -> &str {
        (**self).service()
    }
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
    fn state(&self) -> PeerState {
        (**self).state()
    }
    fn recency(&self) -> u64 {
        (**self).recency()
    }
}

/// The body of `GET /v1/peers`, serialized straight from the page (keys in alphabetical
/// order, as the `Value` map it replaces had them).
#[derive(serde::Serialize)]
struct ListBody<'a> {
    as_of_unix_ms: u64,
    limit: usize,
    next_offset: Option<usize>,
    offset: usize,
    peers: &'a [PeerInfo],
    total: usize,
}

/// What a request for a list asks for (`GET /v1/peers`'s parameters).
#[derive(Debug, Default, PartialEq)]
pub struct ListQuery {
    /// Only this id (`GET /v1/peers/{id}`; not a list parameter).
    id: Option<String>,
    service: Option<String>,
    states: Vec<PeerState>,
    labels: Vec<(String, String)>,
    sort: SortKey,
    offset: usize,
    limit: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum SortKey {
    /// Service, then id: the order of `peers()` on a watcher.
    #[default]
    Service,
    Id,
    State,
    /// Most recently heard first.
    LastSeen,
}

const PARAMS: &str = "service, state, label, sort, offset, limit";

/// A bad parameter, said as the config errors say it: name, value as given, accepted form.
fn bad(name: &str, value: &str, expected: &str) -> String {
    crate::error::Error::config(name, value, expected).to_string()
}

impl ListQuery {
    /// A list request without parameters: the first page, in the default order.
    pub fn default_page() -> ListQuery {
        ListQuery { limit: DEFAULT_LIMIT, ..ListQuery::default() }
    }

    fn parse(pairs: &[(String, String)]) -> Result<ListQuery, String> {
        let mut q = ListQuery::default_page();
        for (key, value) in pairs {
            match key.as_str() {
                "service" => q.service = Some(value.clone()),
                "state" => {
                    for s in value.split(',') {
                        q.states.push(s.parse().map_err(|_| {
                            bad("state", s, "alive, suspect, dead or left (comma-separated), or a watcher's state")
                        })?);
                    }
                }
                "label" => {
                    let (k, v) = value.split_once('=').ok_or_else(|| bad("label", value, "k=v"))?;
                    q.labels.push((k.to_string(), v.to_string()));
                }
                "sort" => {
                    q.sort = match value.as_str() {
                        "service" => SortKey::Service,
                        "id" => SortKey::Id,
                        "state" => SortKey::State,
                        "last_seen" => SortKey::LastSeen,
                        _ => return Err(bad("sort", value, "service, id, state or last_seen")),
                    }
                }
                "offset" => q.offset = value.parse().map_err(|_| bad("offset", value, "a whole number >= 0"))?,
                "limit" => {
                    q.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| bad("limit", value, &format!("a whole number from 1 to {MAX_LIMIT}")))?
                }
                _ => return Err(bad("parameter", key, PARAMS)),
            }
        }
        Ok(q)
    }

    fn matches(&self, p: &impl Listed) -> bool {
        self.id.as_ref().map_or(true, |id| id == p.id())
            && self.service.as_ref().map_or(true, |s| s == p.service())
            && (self.states.is_empty() || self.states.contains(&p.state()))
            && self.labels.iter().all(|(k, v)| p.label(k) == Some(v.as_str()))
    }

    /// The page asked for, and how many peers matched in all.
    pub fn apply<T: Listed>(&self, mut peers: Vec<T>) -> (Vec<T>, usize) {
        peers.retain(|p| self.matches(p));
        let by_key = |a: &T, b: &T| (a.service(), a.id()).cmp(&(b.service(), b.id()));
        match self.sort {
            SortKey::Service => peers.sort_by(by_key),
            SortKey::Id => peers.sort_by(|a, b| a.id().cmp(b.id()).then_with(|| by_key(a, b))),
            SortKey::State => peers.sort_by(|a, b| a.state().cmp(&b.state()).then_with(|| by_key(a, b))),
            SortKey::LastSeen => peers.sort_by(|a, b| b.recency().cmp(&a.recency()).then_with(|| by_key(a, b))),
        }
        let total = peers.len();
        let page = peers.into_iter().skip(self.offset).take(self.limit).collect();
        (page, total)
    }
}

fn view_error(e: crate::error::Error) -> Response {
    error_response(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// A `/v1/peers` body kept for the next request with the same query on the same copy of
/// the rows (a reader polling faster than the copy is renewed costs nothing more).
pub(super) struct CachedList {
    generation: u64,
    query: String,
    body: Bytes,
}

pub(super) async fn list(
    State(s): State<ViewState>,
    RawQuery(raw): RawQuery,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let q = match ListQuery::parse(&pairs) {
        Ok(q) => q,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e),
    };
    let raw = raw.unwrap_or_default();
    let generation = s.view.listing_generation();
    if let Some(c) = s.last_list.lock().as_ref().filter(|c| Some(c.generation) == generation && c.query == raw) {
        return json_body(c.body.clone());
    }
    let page = match s.view.list(&q) {
        Ok(page) => page,
        Err(e) => return view_error(e),
    };
    let next = q.offset + page.peers.len();
    let body = ListBody {
        as_of_unix_ms: page.as_of_unix_ms,
        limit: q.limit,
        next_offset: (next < page.total).then_some(next),
        offset: q.offset,
        peers: &page.peers,
        total: page.total,
    };
    let body = match serde_json::to_vec(&body) {
        Ok(b) => Bytes::from(b),
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Some(generation) = generation {
        *s.last_list.lock() = Some(CachedList { generation, query: raw, body: body.clone() });
    }
    json_body(body)
}

fn json_body(body: Bytes) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub(super) async fn one(
    State(s): State<ViewState>,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let mut service = None;
    for (key, value) in &pairs {
        match key.as_str() {
            "service" => service = Some(value.clone()),
            _ => return error_response(StatusCode::BAD_REQUEST, bad("parameter", key, "service")),
        }
    }
    let query = ListQuery { id: Some(id.clone()), service, limit: 1, ..ListQuery::default() };
    let (found, total) = match s.view.list(&query) {
        Ok(page) => (page.peers, page.total),
        Err(e) => return view_error(e),
    };
    match (found.as_slice(), total) {
        ([p], 1) => Json(p.to_json()).into_response(),
        (_, 0) => error_response(StatusCode::NOT_FOUND, format!("no peer with id {id:?}")),
        _ => error_response(
            StatusCode::CONFLICT,
            format!("{total} services have a peer with id {id:?}: add ?service=NAME"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<ListQuery, String> {
        let uri: axum::http::Uri = format!("/v1/peers?{s}").parse().unwrap();
        ListQuery::parse(&Query::<Vec<(String, String)>>::try_from_uri(&uri).unwrap().0)
    }

    fn peer(service: &str, id: &str, state: PeerState, seen: u64) -> PeerInfo {
        PeerInfo {
            id: id.into(),
            service: service.into(),
            labels: [("zone".to_string(), if id.ends_with('1') { "a" } else { "b" }.to_string())].into(),
            state,
            last_seen_unix_ms: seen,
            incarnation: 1,
            epoch: 0,
            interval_ms: 1000,
            rtt_us: None,
            addr: None,
        }
    }

    fn ids(page: &[PeerInfo]) -> Vec<String> {
        page.iter().map(|p| format!("{}/{}", p.service, p.id)).collect()
    }

    #[test]
    fn bad_parameters_are_named_with_the_value_as_given() {
        assert_eq!(q("state=zombie").unwrap_err().split(':').next().unwrap(), "state \"zombie\"");
        assert!(q("limit=0").unwrap_err().starts_with("limit \"0\": expected a whole number from 1 to 10000"));
        assert!(q("label=zone").unwrap_err().starts_with("label \"zone\": expected k=v"));
        assert!(q("colour=red").unwrap_err().starts_with("parameter \"colour\": expected service, state"));
        assert!(q("sort=age").unwrap_err().contains("last_seen"));
    }

    #[test]
    fn filters_sort_and_pages() {
        let peers = vec![
            peer("web", "w2", PeerState::Dead, 5),
            peer("db", "d1", PeerState::Alive, 9),
            peer("web", "w1", PeerState::Alive, 7),
            peer("web", "w3", PeerState::Suspect, 1),
        ];
        let (page, total) = q("").unwrap().apply(peers.clone());
        assert_eq!((ids(&page), total), (vec!["db/d1".into(), "web/w1".into(), "web/w2".into(), "web/w3".into()], 4));
        let (page, total) = q("service=web&state=alive,suspect").unwrap().apply(peers.clone());
        assert_eq!((ids(&page), total), (vec!["web/w1".into(), "web/w3".into()], 2));
        let (page, _) = q("label=zone%3Da").unwrap().apply(peers.clone());
        assert_eq!(ids(&page), vec!["db/d1", "web/w1"]);
        let (page, _) = q("sort=last_seen").unwrap().apply(peers.clone());
        assert_eq!(ids(&page), vec!["db/d1", "web/w1", "web/w2", "web/w3"]);
        let (page, _) = q("sort=state").unwrap().apply(peers.clone());
        assert_eq!(ids(&page), vec!["db/d1", "web/w1", "web/w3", "web/w2"]);
        let (page, total) = q("offset=1&limit=2").unwrap().apply(peers);
        assert_eq!((ids(&page), total), (vec!["web/w1".into(), "web/w2".into()], 4));
    }
}
