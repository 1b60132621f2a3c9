//! One client connection.
//!
//! Memory per connection is what it is sent and not more: reads go through one scratch
//! buffer per runtime thread into the transport, which holds only the bytes of a partial
//! frame (counted against the address's and the server's budgets, and bounded in time by
//! `frame_timeout`) and gives its buffer back once a frame is complete.
//!
//! Requests run concurrently: each is a task of its own, at most [`MAX_IN_FLIGHT`] per
//! connection, so a slow `channels.getParticipants` does not hold up a `sendMessage` behind
//! it. Answers go out as they finish, each in its own `rpc_result` naming the request's
//! msg_id, which is all MTProto pairs them by. A request wrapped in `invokeAfterMsg(s)`
//! starts only once the requests it names have been answered (and fails with
//! `MSG_WAIT_FAILED` if one of them failed), which is how clients ask for order. While the
//! connection is at its bound, or requests wait to start, the socket is not read: a client
//! cannot queue more work than that by pipelining.

use crate::addrs::{Refusal, Ticket};
use crate::Gateway;
use herald_domain::bus::{Event, Subscription};
use herald_domain::model::{AuthKeyRecord, UserId};
use herald_mtproto::crypto::{decrypt_client_message, encrypt_server_message_in_place, AuthKey, MAX_SERVER_PADDING};
use herald_mtproto::handshake::{Handshake, Step};
use herald_mtproto::rng::{BufferedOsRng, OsRng, Rng};
use herald_mtproto::session::{split_plaintext, Event as SessionEvent, Now, OutMessage, Output, Session};
use herald_mtproto::transport::{Framing, ServerTransport};
use herald_mtproto::wire;
use herald_rpc::push::{self, Push};
use herald_rpc::{CallCtx, KeyState, Watched};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};
use tokio::time::{sleep_until, Duration, Instant};

const TRANSPORT_AUTH_KEY_NOT_FOUND: i32 = -404;
const TRANSPORT_FLOOD: i32 = -429;
const TRANSPORT_WRONG_DC: i32 = -444;
/// Completed key exchanges one connection may run before it is closed with -429.
const MAX_KEY_EXCHANGES: u32 = 8;
/// How long a key exchange waits for its address's turn before the connection gets -429.
const KEY_EXCHANGE_QUEUE: Duration = Duration::from_secs(10);
/// A key's last use is written at most this often (unused keys are collected by age).
const TOUCH_EVERY_SECS: i64 = 3600;
const REQ_DH_PARAMS: u32 = 0xd712e4be;
/// Bytes read and discarded after a -429 or -404, so the error is not lost to a reset.
const DRAIN_MAX: usize = 64 * 1024;
/// Requests one connection runs at once. Beyond, they wait in order and the socket is not
/// read until they have started.
pub const MAX_IN_FLIGHT: usize = 16;
/// Failed requests remembered for `invokeAfterMsg` (MSG_WAIT_FAILED).
const FAILED_REMEMBERED: usize = 1024;
/// Most msg_ids one request may wait for (`invokeAfterMsgs`); more is INPUT_REQUEST_TOO_LONG.
const MAX_WAITS_FOR: usize = 64;
/// How far into the queue a free slot looks for a request that may start. Requests wait only
/// for requests ahead of them, so the first one can always start once the running ones end.
const READY_WINDOW: usize = 64;
/// Queued events packed into one message for a session (see `Conn::on_event`).
const PUSH_BATCH: usize = 32;
const PUSH_BATCH_BYTES: usize = 256 * 1024;

thread_local! {
    /// Where socket reads land before the transport takes the bytes: one per runtime
    /// thread, so an idle connection owns no read buffer.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; 64 * 1024].into_boxed_slice());
}

/// The authorization key this connection speaks with, and what calls may change about it.
struct Keyed {
    /// Shared with the requests in flight, which each name the key they came with.
    key: Arc<AuthKey>,
    ctx: CallCtx,
    /// The key exchange's salt and until when it is accepted.
    first_salt: (i64, i64),
    /// The version of the key's watched state (`KeyState::watched`) last acted on: a change
    /// of binding on any connection, or a login token the key exported accepted (QR login).
    seen_version: u64,
    /// The accepted login tokens already pushed about.
    tokens_seen: u64,
    /// When a temporary key expires.
    expires_at: Option<i64>,
    /// The state of the key this connection encrypts with, where a binding made on any of its
    /// connections is recorded (`KeyState::bound_to`).
    bound: Arc<KeyState>,
    /// The key's last use as recorded in the store (unused keys are collected by age).
    last_used: i64,
    /// The session that last wrote: pushes go there.
    session_id: Option<i64>,
    /// A request was answered here that was not wrapped in `invokeWithoutUpdates` nor a file
    /// transfer: the connection is subscribed and pushes may flow, if it is the one carrying
    /// the key's updates (`KeyState::carries_updates`).
    wants_updates: bool,
    /// This connection's serial for [`KeyState::claim_updates`] while it holds this key.
    serial: u64,
    /// The bound user's bus subscription: their topic and the channels they are in.
    subscription: Option<(UserId, Subscription)>,
    /// Access hashes recently patched into this key's channel pushes.
    hashes: push::HashCache,
}

impl Drop for Keyed {
    fn drop(&mut self) {
        self.ctx.key.let_go(self.serial);
    }
}

/// `upload.file`, whose bytes are sent as they are.
const UPLOAD_FILE: u32 = 0x096a18d5;

/// Serials of [`Keyed`] values, unique in the process (0 is "no connection").
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// A key's shared state, with what its connections follow now and that state's version.
type KeyWatch = (Arc<KeyState>, (Watched, u64));

/// Whose msg_ids a request's are: (auth key id, session id). `invokeAfterMsg` names
/// requests of its own session, whose msg_ids are unique (the replay window).
type Origin = (i64, i64);

/// A request received and not yet started.
struct Job {
    origin: Origin,
    session: Arc<Mutex<Session>>,
    key: Arc<AuthKey>,
    ctx: CallCtx,
    msg_id: i64,
    body: Vec<u8>,
    /// The msg_ids it named in `invokeAfterMsg(s)` (None: more than [`MAX_WAITS_FOR`]).
    after: Option<Vec<i64>>,
    /// Those of them still unanswered when it arrived (so all ahead of it or running).
    blockers: Vec<i64>,
    /// Bytes answered so far to the received message (container) it came in.
    budget: Arc<AtomicUsize>,
    /// Service replies to the received message (new_session_created, pongs), sent with this
    /// request's answer as they were before requests ran concurrently: the first request of
    /// a message carries them.
    service: Vec<OutMessage>,
}

/// A request's task, while it runs.
struct Running {
    origin: Origin,
    session: Arc<Mutex<Session>>,
    key: Arc<AuthKey>,
    msg_id: i64,
    body_len: usize,
    service: Vec<OutMessage>,
}

/// What a request's task hands back.
struct Finished {
    /// The whole `rpc_result`, gzipped where that is smaller.
    reply: Vec<u8>,
    ok: bool,
    without_updates: bool,
}

/// Requests received on one connection: waiting to start, and running.
#[derive(Default)]
struct RequestTables {
    waiting: VecDeque<Job>,
    running: JoinSet<Finished>,
    meta: HashMap<tokio::task::Id, Running>,
    /// Request bytes held by running tasks.
    running_bytes: usize,
    /// The requests waiting or running.
    unanswered: HashMap<(Origin, i64), u32>,
    /// The latest failed requests, for `invokeAfterMsg`.
    failed: VecDeque<(Origin, i64)>,
    failed_set: std::collections::HashSet<(Origin, i64)>,
}

impl RequestTables {
    /// Whether the socket may be read: nothing waits and there is room to start more.
    fn accepting(&self, max_bytes: usize) -> bool {
        self.waiting.is_empty() && self.running.len() < MAX_IN_FLIGHT && self.running_bytes < max_bytes
    }

    /// Queues a received request. It waits only for requests that are unanswered now, all
    /// of them ahead of it or running, so waiting never forms a cycle.
    fn push(&mut self, mut job: Job) {
        if let Some(after) = &job.after {
            job.blockers = after.iter().copied().filter(|m| self.unanswered.contains_key(&(job.origin, *m))).collect();
        }
        *self.unanswered.entry((job.origin, job.msg_id)).or_default() += 1;
        self.waiting.push_back(job);
    }

    /// A request was answered (or refused).
    fn answered(&mut self, origin: Origin, msg_id: i64, ok: bool) {
        let id = (origin, msg_id);
        if let std::collections::hash_map::Entry::Occupied(mut e) = self.unanswered.entry(id) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
                if self.unanswered.is_empty() {
                    self.unanswered = HashMap::new();
                }
            }
        }
        if !ok {
            if self.failed.len() == FAILED_REMEMBERED {
                if let Some(old) = self.failed.pop_front() {
                    self.failed_set.remove(&old);
                }
            }
            self.failed.push_back(id);
            self.failed_set.insert(id);
        }
    }

    /// The first waiting request (within [`READY_WINDOW`]) that may start now, taken out of
    /// the queue.
    fn next_ready(&mut self) -> Option<Job> {
        if self.running.len() >= MAX_IN_FLIGHT {
            return None;
        }
        let i = self.waiting.iter().take(READY_WINDOW).position(|j| !j.blockers.iter().any(|m| self.unanswered.contains_key(&(j.origin, *m))))?;
        let job = self.waiting.remove(i);
        if self.waiting.is_empty() {
            self.waiting = VecDeque::new();
        }
        job
    }

    /// A request's task ended: its bookkeeping, and the tables' memory once nothing is left
    /// (a job or a running entry carries its key, a few hundred bytes: an idle connection
    /// should not keep room for them).
    fn take_running(&mut self, id: tokio::task::Id) -> Option<Running> {
        let run = self.meta.remove(&id)?;
        self.running_bytes -= run.body_len;
        if self.meta.is_empty() {
            self.meta = HashMap::new();
        }
        Some(run)
    }
}

/// A connection's requests. The tables exist only while there is something in them: an idle
/// connection holds a null pointer, not their 232 bytes and the join set's shared list (an
/// allocation of its own).
#[derive(Default)]
struct Requests(Option<Box<RequestTables>>);

impl Requests {
    fn accepting(&self, max_bytes: usize) -> bool {
        self.0.as_ref().is_none_or(|r| r.accepting(max_bytes))
    }

    fn is_running(&self) -> bool {
        self.0.as_ref().is_some_and(|r| !r.running.is_empty())
    }

    fn tables(&mut self) -> &mut RequestTables {
        self.0.get_or_insert_with(Box::default)
    }

    fn push(&mut self, job: Job) {
        self.tables().push(job);
    }

    /// Without tables nothing is unanswered, so only a failure (remembered) needs them.
    fn answered(&mut self, origin: Origin, msg_id: i64, ok: bool) {
        if self.0.is_some() || !ok {
            self.tables().answered(origin, msg_id, ok);
        }
    }

    fn next_ready(&mut self) -> Option<Job> {
        self.0.as_mut()?.next_ready()
    }

    fn take_running(&mut self, id: tokio::task::Id) -> Option<Running> {
        self.0.as_mut()?.take_running(id)
    }

    /// Whether this request failed lately (for `invokeAfterMsg`).
    fn failed(&self, origin: Origin, msg_id: i64) -> bool {
        self.0.as_ref().is_some_and(|r| r.failed_set.contains(&(origin, msg_id)))
    }

    /// The next request task to end (pending while none runs).
    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<(tokio::task::Id, Finished), JoinError>>> {
        match self.0.as_mut() {
            Some(r) => r.running.poll_join_next_with_id(cx),
            None => Poll::Pending,
        }
    }

    /// Gives the tables back once nothing waits, runs, is unanswered or is remembered as
    /// failed.
    fn release_if_idle(&mut self) {
        if self.0.as_ref().is_some_and(|r| r.waiting.is_empty() && r.running.is_empty() && r.meta.is_empty() && r.unanswered.is_empty() && r.failed.is_empty())
        {
            self.0 = None;
        }
    }
}

enum Verdict {
    Continue,
    /// Send these framed bytes (if any), then close.
    Close(Option<i32>),
}

struct Conn {
    gw: Arc<Gateway>,
    peer: SocketAddr,
    /// Read and written from this one task: not split into halves (a split shares the stream
    /// through an extra allocation).
    stream: TcpStream,
    transport: ServerTransport,
    /// None between exchanges (the state a new one starts from): most connections finish
    /// theirs at once and hold nothing for it after.
    handshake: Option<Box<Handshake>>,
    rng: BufferedOsRng,
    keyed: Option<Keyed>,
    out: Vec<u8>,
    disconnect_at: Option<Instant>,
    last_plain_msg_id: i64,
    /// Completed key exchanges on this connection (Telethon retries a few on one socket).
    key_exchanges: u32,
    ticket: Ticket,
    requests: Requests,
}

/// What a connection's task starts from. Boxed: an async fn keeps its arguments for its
/// whole life, beside the locals they are moved into, so a connection would hold these
/// bytes twice; a box of them is 8 bytes, freed once unpacked.
pub(crate) struct Start {
    pub gw: Arc<Gateway>,
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub ticket: Ticket,
    pub shutdown: watch::Receiver<bool>,
    /// The connection's place under `max_connections`, held until the task ends.
    pub permit: tokio::sync::OwnedSemaphorePermit,
}

/// The order a connection's loop polls its three sources in (request tasks, socket, bus
/// and key) on turn `turn`. Each exactly once, whatever the turn: a source skipped would have
/// no waker registered and could sleep through its event.
fn poll_order(turn: u8) -> [u8; 3] {
    let t = turn % 3;
    [t, (t + 1) % 3, (t + 2) % 3]
}

/// The start's fields, its box freed here: moved out of in `run`, the box itself would be
/// freed only when `run` returns (an argument lives as long as the function).
#[allow(clippy::boxed_local)] // the box is the point: freed here, not when `run` returns
fn unbox(start: Box<Start>) -> Start {
    *start
}

/// What woke a connection's loop.
enum Woke {
    Finished(Result<(tokio::task::Id, Finished), JoinError>),
    Readable(std::io::Result<()>),
    Signal(Signal),
    Timer,
    Shutdown,
}

pub(crate) async fn run(start: Box<Start>) {
    // Decrements the gauge even if the task panics.
    struct Open(Arc<Gateway>, #[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.metrics.connections_open.dec();
        }
    }
    // Unpacked in a block: what is not moved into `c` does not outlive it (a local that is
    // merely copied, like the address, would otherwise be kept across every wait).
    // Declared first, so dropped last: the connection's place and the open-connections gauge
    // are given back after its socket and everything else.
    let _open;
    let (mut c, mut shutdown) = {
        let Start { gw, stream, peer, ticket, shutdown, permit } = unbox(start);
        tracing::debug!(%peer, "connection opened");
        _open = Open(gw.clone(), permit);
        let c = Conn {
            stream,
            transport: ServerTransport::new(gw.config.max_frame),
            handshake: None,
            rng: BufferedOsRng,
            keyed: None,
            out: Vec::new(),
            disconnect_at: None,
            last_plain_msg_id: 0,
            key_exchanges: 0,
            ticket,
            requests: Requests::default(),
            peer,
            gw,
        };
        (c, shutdown)
    };
    let mut deadline = Instant::now() + c.gw.config.init_timeout;
    // When the partial frame now buffered began to arrive.
    let mut partial_since: Option<Instant> = None;
    // Which of the three sources is polled first this turn (they take turns, as in a
    // `select!`, so none starves the others).
    let mut turn = 0u8;
    let reason = loop {
        let accepting = c.requests.accepting(c.gw.config.max_frame);
        let running = c.requests.is_running();
        if !accepting && running {
            // The server is busy with this client's requests: its clocks do not run (a
            // partial frame's and the idle deadline restart when reading resumes).
            let now = Instant::now();
            partial_since = partial_since.map(|_| now);
            deadline = deadline.max(now + c.gw.config.idle_timeout);
        }
        let frame_deadline = partial_since.map(|t| t + c.gw.config.frame_timeout);
        let wake = [Some(deadline), c.disconnect_at, frame_deadline].into_iter().flatten().min().unwrap();
        let mut fed = false;
        turn = (turn + 1) % 3;
        let woke = {
            // The socket, the request tasks, the key's state and the bus queue are polled in
            // place: only the timer and the shutdown notification are futures kept in the task
            // while it waits, which is most of an idle connection's memory (ARCHITECTURE.md,
            // `herald-net`).
            let sleep = sleep_until(wake);
            let stopping = shutdown.changed();
            let (mut sleep, mut stopping) = (std::pin::pin!(sleep), std::pin::pin!(stopping));
            let Conn { requests, keyed, stream, .. } = &mut c;
            // `move`: the closure holds copies of the deadline and the flags rather than
            // references to them, which keeps them out of the task while it waits.
            let (stopping, sleep) = (&mut stopping, &mut sleep);
            std::future::poll_fn(move |cx| {
                if stopping.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woke::Shutdown);
                }
                // A deadline that has passed is kept first, or a client whose socket or bus
                // never pauses would never time out.
                if Instant::now() >= wake {
                    return Poll::Ready(Woke::Timer);
                }
                for source in poll_order(turn) {
                    match source {
                        0 if running => {
                            if let Poll::Ready(Some(done)) = requests.poll_finished(cx) {
                                return Poll::Ready(Woke::Finished(done));
                            }
                        }
                        1 if accepting => {
                            if let Poll::Ready(r) = stream.poll_read_ready(cx) {
                                return Poll::Ready(Woke::Readable(r));
                            }
                        }
                        2 => {
                            // The key first: rarely ready, and a steady stream of events must
                            // not hold back a login, logout or accepted token.
                            if let Some(k) = keyed.as_mut() {
                                if k.ctx.key.poll_changed_since(k.seen_version, k.serial, cx).is_ready() {
                                    return Poll::Ready(Woke::Signal(Signal::Watched));
                                }
                                if let Some((_, sub)) = k.subscription.as_mut() {
                                    if let Poll::Ready(ev) = sub.rx.poll_recv(cx) {
                                        return Poll::Ready(Woke::Signal(Signal::Event(ev)));
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Woke::Timer),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        };
        // Moved into the match's own scope: the value ends with it, so it is not kept in
        // the task across the waits below.
        #[allow(clippy::blocks_in_conditions)]
        let verdict = match { woke } {
            Woke::Readable(r) => {
                if r.is_err() {
                    break "read error";
                }
                let read = SCRATCH.with(|b| {
                    let mut b = b.borrow_mut();
                    let n = c.stream.try_read(&mut b[..])?;
                    c.transport.feed(&b[..n]);
                    Ok::<_, std::io::Error>(n)
                });
                match read {
                    Ok(0) => break "closed by client",
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => break "read error",
                }
                fed = true;
                Verdict::Continue
            }
            // Moved whole into one boxed future: a value only partly moved out would keep its
            // place in the task across every later wait.
            woke @ (Woke::Finished(_) | Woke::Signal(_)) => Box::pin(c.on_wake(woke)).await,
            Woke::Timer => {
                if partial_since.is_some_and(|t| t + c.gw.config.frame_timeout <= Instant::now()) {
                    c.gw.metrics.partial_frame_timeouts.inc();
                    break "frame not completed in time";
                }
                break "timed out";
            }
            Woke::Shutdown => break "server shutting down",
        };
        // Frames read now, or left buffered while requests could not be taken.
        let verdict = if matches!(verdict, Verdict::Continue) && (fed || (c.transport.buffered() > 0 && c.requests.accepting(c.gw.config.max_frame))) {
            let (v, frames) = Box::pin(c.drain_frames()).await;
            // Only complete frames count as activity: trickled bytes do not.
            if frames > 0 {
                let idle = if c.ticket.is_authenticated() { c.gw.config.idle_timeout } else { c.gw.config.unauth_idle_timeout };
                deadline = Instant::now() + idle;
            }
            let buffered = c.transport.buffered();
            partial_since = match (buffered, frames, partial_since) {
                (0, _, _) => None,
                (_, 0, Some(t)) => Some(t),
                _ => Some(Instant::now()),
            };
            // The memory held, not just the bytes: a buffer kept from a larger frame counts.
            match c.ticket.set_buffered(c.transport.held()) {
                Err(r) if matches!(v, Verdict::Continue) => c.refuse(r),
                _ => v,
            }
        } else {
            verdict
        };
        if !c.flush().await {
            break "write failed or timed out";
        }
        c.requests.release_if_idle();
        if let Verdict::Close(code) = verdict {
            if let Some(code) = code {
                c.out.extend_from_slice(&c.transport.encode_error(code, &mut c.rng));
                c.flush().await;
                // Closing with unread input would reset the connection and could destroy the
                // error before the client reads it: stop writing, then drain (bounded).
                let _ = c.stream.shutdown().await;
                // Boxed: its state would otherwise size every idle connection's task.
                Box::pin(drain(&c.stream, DRAIN_MAX)).await;
            }
            break "protocol";
        }
    };
    // Boxed, like every rarely taken wait here: the task's size is that of its largest wait.
    Box::pin(c.close(reason)).await;
}

impl Conn {
    async fn close(mut self, reason: &'static str) {
        let _ = self.stream.shutdown().await;
        if let Some((_, sub)) = self.keyed.as_mut().and_then(|k| k.subscription.take()) {
            self.gw.bus.unsubscribe(sub.id);
        }
        // Requests already running finish (their answers are lost with the connection, and the
        // client resends); a half-done write is never cut off. The connection, and with it its
        // place in the per-address limits, lasts until they have (or for `write_timeout` at
        // most), so reconnecting cannot pile up work.
        if let Some(r) = self.requests.0.as_mut() {
            let _ = tokio::time::timeout(self.gw.config.write_timeout, async { while r.running.join_next().await.is_some() {} }).await;
            r.running.detach_all();
        }
        tracing::debug!(peer = %self.peer, reason, "connection closed");
    }
}

/// Reads and discards what the client still sends, for at most a second and `max` bytes.
async fn drain(rd: &TcpStream, max: usize) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut left = max;
        while left > 0 && rd.readable().await.is_ok() {
            let n = SCRATCH.with(|b| rd.try_read(&mut b.borrow_mut()[..]));
            match n {
                Ok(0) => return,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

enum Signal {
    /// An event for the subscribed user (None: the bus dropped the subscription).
    Event(Option<Arc<Event>>),
    /// The key's binding changed (login or logout on any of its connections), or a login
    /// token it exported was accepted.
    Watched,
}

fn now(gw: &Gateway) -> Now {
    Now { unix_ms: gw.clock.now_ms() }
}

impl Conn {
    /// Closes with -429 for exceeding a limit, counted and logged (rate-limited).
    fn refuse(&self, r: Refusal) -> Verdict {
        static LOG: crate::metrics::LogLimiter = crate::metrics::LogLimiter::new(Duration::from_secs(10));
        self.gw.metrics.limit_close(r.label());
        if let Some(held) = LOG.allow() {
            tracing::warn!(peer = %self.peer, limit = r.label(), similar_since_last = held, "limit exceeded; closing with -429");
        }
        Verdict::Close(Some(TRANSPORT_FLOOD))
    }

    /// Handles the complete frames buffered, while requests may be taken (the rest stay in
    /// the transport, counted against the budgets, until they may); returns the verdict and
    /// how many frames were handled.
    async fn drain_frames(&mut self) -> (Verdict, usize) {
        let mut n = 0;
        loop {
            if !self.requests.accepting(self.gw.config.max_frame) {
                return (Verdict::Continue, n);
            }
            match self.transport.next_frame() {
                Ok(Some(frame)) => {
                    n += 1;
                    if let Verdict::Close(code) = self.on_frame(frame).await {
                        return (Verdict::Close(code), n);
                    }
                }
                Ok(None) => return (Verdict::Continue, n),
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "transport error");
                    return (Verdict::Close(None), n);
                }
            }
        }
    }

    /// Writes what is buffered. A client that stops reading must not pin this task: each
    /// write is bounded in time. False when the connection is unusable.
    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        // Bytes waiting for a client to read them count against its address's and the
        // server's output budgets: many connections that stop reading cannot pin unbounded
        // memory in unsent answers.
        if let Err(r) = self.ticket.set_output(self.out.capacity()) {
            self.gw.metrics.limit_close(r.label());
            self.out = Vec::new();
            return false;
        }
        let ok = matches!(tokio::time::timeout(self.gw.config.write_timeout, self.stream.write_all(&self.out)).await, Ok(Ok(())));
        // Nothing is kept for the next write: an idle connection holds no output buffer.
        self.out = Vec::new();
        let _ = self.ticket.set_output(0);
        ok
    }

    /// Packs, encrypts and writes `replies` for `session`, leaving `replies` empty.
    async fn emit(&mut self, session: &Mutex<Session>, key: &AuthKey, replies: &mut Vec<OutMessage>) -> bool {
        if replies.is_empty() {
            return true;
        }
        // One buffer from packing to framing: room for the key id and msg_key, the
        // plaintext, then the padding, encrypted in place.
        let size = 24 + 40 + replies.iter().map(|m| 16 + m.body.len()).sum::<usize>() + MAX_SERVER_PADDING;
        let mut buf = Vec::with_capacity(size);
        buf.extend_from_slice(&[0u8; 24]);
        session.lock().unwrap().pack_into(std::mem::take(replies), now(&self.gw), &self.gw.salts, &mut buf);
        encrypt_server_message_in_place(key, &mut buf, &mut self.rng);
        self.send(&buf);
        self.flush().await
    }

    fn send(&mut self, payload: &[u8]) {
        self.transport.encode_into(payload, &mut self.rng, &mut self.out);
    }

    async fn on_frame(&mut self, frame: Vec<u8>) -> Verdict {
        if frame.len() < 8 {
            return Verdict::Close(None);
        }
        let auth_key_id = i64::from_le_bytes(frame[..8].try_into().unwrap());
        if auth_key_id == 0 {
            return self.on_plain(&frame).await;
        }
        // A key dropped (`auth.dropTempAuthKeys`) or expired while this connection held it is
        // unknown from now on, as it would be to a new connection.
        let now_secs = self.gw.clock.now_secs();
        if let Some(k) = self.keyed.as_ref().filter(|k| k.key.id() == auth_key_id) {
            if self.gw.key_states.is_revoked(auth_key_id) || k.expires_at.is_some_and(|t| t <= now_secs) {
                return Verdict::Close(Some(TRANSPORT_AUTH_KEY_NOT_FOUND));
            }
        }
        // A temporary key bound on another of its connections acts as its permanent key here too.
        if let Some(perm) = self.keyed.as_ref().filter(|k| k.key.id() == auth_key_id).and_then(|k| k.bound.bound_to().filter(|p| *p != k.ctx.auth_key_id)) {
            self.adopt_binding(perm).await;
        }
        if self.keyed.as_ref().is_none_or(|k| k.key.id() != auth_key_id) {
            match self.load_key(auth_key_id).await {
                Ok(Some(k)) => self.keyed = Some(k),
                Ok(None) => {
                    tracing::debug!(peer = %self.peer, auth_key = format_args!("{auth_key_id:016x}"), "unknown auth key");
                    return Verdict::Close(Some(TRANSPORT_AUTH_KEY_NOT_FOUND));
                }
                Err(()) => return Verdict::Close(None),
            }
        }
        let mut data = &frame[8..];
        // Padded intermediate may add up to 15 bytes; the transport strips len % 4 and
        // the rest is cut at the cipher's block boundary here.
        if self.transport.kind().is_some_and(|k| k.framing == Framing::PaddedIntermediate) && data.len() >= 16 {
            data = &data[..16 + (data.len() - 16) / 16 * 16];
        }
        self.on_encrypted(data).await
    }

    /// The key with this id. Err(()) when the store failed: the client must not be told
    /// its key is unknown (it would drop it and log its user out), so the caller closes
    /// without a word and the client reconnects.
    async fn load_key(&self, id: i64) -> Result<Option<Keyed>, ()> {
        let rec = match self.gw.keys.get_key(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::error!(error = %e, "loading an auth key failed");
                return Err(());
            }
        };
        let now = self.gw.clock.now_secs();
        if rec.expires_at.is_some_and(|t| t <= now) {
            return Ok(None);
        }
        let Ok(data) = <[u8; 256]>::try_from(rec.key.as_slice()) else { return Ok(None) };
        // A temporary key bound to a permanent one acts as that one (its login, its client
        // data); if the permanent key is gone, the temporary key acts as itself, unbound.
        let (identity, ident) = match rec.perm_key_id {
            Some(p) => match self.gw.keys.get_key(p).await {
                Ok(Some(perm)) if perm.expires_at.is_none() => (p, perm),
                // The permanent key is gone: the temporary key acts as itself (its own login,
                // if it ever had one).
                Ok(_) => (id, rec.clone()),
                Err(e) => {
                    tracing::error!(error = %e, "loading an auth key failed");
                    return Err(());
                }
            },
            None => (id, rec.clone()),
        };
        // Login tokens accepted before now are not pushed about.
        let Some((state, (watched, seen_version))) = self.key_state(identity, &ident).await? else { return Ok(None) };
        // The state of the key this connection encrypts with, where a binding made on another
        // of its connections shows (the same state unless the key is a bound temporary one).
        let own = if identity == id { state.clone() } else { self.gw.key_states.get_or_insert(id, || KeyState::new(None, None)) };
        Ok(Some(Keyed {
            key: Arc::new(AuthKey::from_bytes(data)),
            ctx: CallCtx { auth_key_id: identity, key: state, peer: self.ticket.addr(), crypto_key_id: id, session_id: 0, msg_id: 0 },
            first_salt: (rec.first_salt, rec.created_at + herald_mtproto::salt::PERIOD_SECS),
            last_used: rec.last_used_at,
            tokens_seen: watched.tokens_accepted,
            seen_version,
            expires_at: rec.expires_at,
            bound: own,
            session_id: None,
            wants_updates: false,
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            subscription: None,
            hashes: Default::default(),
        }))
    }

    /// The shared state of the key a connection acts as (every connection of the key in this
    /// process shares one), with its watches.
    async fn key_state(&self, id: i64, rec: &AuthKeyRecord) -> Result<Option<KeyWatch>, ()> {
        let mut created = false;
        let state = self.gw.key_states.get_or_insert(id, || {
            created = true;
            KeyState::new(rec.user_id, rec.client.clone())
        });
        if created {
            // The record was read before the state existed: a logout that committed in
            // between (on a connection that has closed since) is only in the store.
            match self.gw.keys.get_key(id).await {
                Ok(Some(again)) => state.replace_user(rec.user_id, again.user_id),
                Ok(None) => return Ok(None),
                Err(e) => {
                    tracing::error!(error = %e, "loading an auth key failed");
                    return Err(());
                }
            }
        }
        let watched = state.watched();
        Ok(Some((state, watched)))
    }

    /// After `auth.bindTempAuthKey` on this connection's temporary key: act as the permanent
    /// key from now on (its login and its events).
    async fn adopt_binding(&mut self, perm: i64) {
        let rec = match self.gw.keys.get_key(perm).await {
            Ok(Some(rec)) => rec,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "loading a permanent key after binding failed");
                return;
            }
        };
        let Ok(Some((state, (watched, version)))) = self.key_state(perm, &rec).await else { return };
        if let Some(k) = self.keyed.as_mut() {
            // The updates this connection carried were the temporary key's; from now on it
            // competes for the permanent key's.
            k.ctx.key.let_go(k.serial);
            if k.wants_updates {
                state.claim_updates(k.serial);
            }
            k.ctx.auth_key_id = perm;
            k.ctx.key = state;
            (k.tokens_seen, k.seen_version) = (watched.tokens_accepted, version);
        }
        self.sync_subscription().await;
    }

    fn plain_msg_id(&mut self) -> i64 {
        let n = now(&self.gw);
        let mut id = (n.secs() << 32) | ((((n.unix_ms.rem_euclid(1000)) << 32) / 1000) & !3) | 1;
        if id <= self.last_plain_msg_id {
            id = self.last_plain_msg_id + 4;
        }
        self.last_plain_msg_id = id;
        id
    }

    async fn on_plain(&mut self, frame: &[u8]) -> Verdict {
        let Ok((_, body)) = wire::parse_plain(frame) else {
            return Verdict::Close(Some(TRANSPORT_AUTH_KEY_NOT_FOUND));
        };
        if self.key_exchanges >= MAX_KEY_EXCHANGES {
            tracing::debug!(peer = %self.peer, "too many key exchanges on one connection");
            return Verdict::Close(Some(TRANSPORT_FLOOD));
        }
        let addr = self.ticket.addr();
        // The RSA step is what a flood would burn CPU with: a token bucket per address.
        if wire::constructor_id(body) == Some(REQ_DH_PARAMS) && !self.handshake.as_ref().is_some_and(|h| h.is_failed()) {
            match self.gw.addrs.key_exchange_token(addr) {
                Ok(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
                Ok(_) => {}
                Err(r) => return self.refuse(r),
            }
        }
        // RSA and DH take milliseconds of CPU: run them on the low-priority key-exchange
        // workers (`kx.rs`), one at a time per address and one per core overall, so that one
        // address's exchanges queue behind each other instead of in front of everyone else's.
        let (own, global) = self.gw.addrs.key_exchange_slots(addr);
        let own_permit = match own {
            Some(sem) => match tokio::time::timeout(KEY_EXCHANGE_QUEUE, sem.acquire_owned()).await {
                Ok(Ok(p)) => Some(p),
                _ => return self.refuse(Refusal::KeyExchangeRate),
            },
            None => None,
        };
        let Ok(global_permit) = global.acquire_owned().await else { return Verdict::Close(None) };
        let now_secs = self.gw.clock.now_secs();
        let mut hs = self.handshake.take().unwrap_or_else(|| Box::new(Handshake::new(self.gw.config.dc_id)));
        let (rsa, body) = (self.gw.rsa.clone(), body.to_vec());
        let outcome = self
            .gw
            .kx
            .run(move || {
                let step = hs.handle(&body, now_secs, &rsa, &mut OsRng);
                (hs, step)
            })
            .await;
        drop((own_permit, global_permit));
        let Some((hs, step)) = outcome else {
            return Verdict::Close(None);
        };
        self.handshake = Some(hs);
        match step {
            Step::Reply(reply) => {
                let id = self.plain_msg_id();
                self.send(&wire::build_plain(id, &reply));
            }
            Step::Completed(done) => {
                let rec = AuthKeyRecord {
                    id: done.key.id(),
                    key: done.key.bytes().to_vec(),
                    created_at: now_secs,
                    expires_at: done.expires_in.map(|e| now_secs + e as i64),
                    user_id: None,
                    client: None,
                    first_salt: done.first_salt,
                    last_used_at: now_secs,
                    addr: crate::addrs::limit_key(self.ticket.addr()).to_string(),
                    perm_key_id: None,
                };
                let reply = match self.gw.keys.insert_key(rec).await {
                    Ok(true) => {
                        self.handshake = None; // finished: ready for another
                        self.key_exchanges += 1;
                        self.gw.metrics.key_exchanges.inc();
                        tracing::debug!(peer = %self.peer, auth_key = format_args!("{:016x}", done.key.id()), "auth key created");
                        done.reply
                    }
                    Ok(false) => self.handshake.as_mut().map(|h| h.collision(&done.key)).unwrap_or_default(),
                    Err(e) => {
                        tracing::error!(error = %e, "storing an auth key failed");
                        return Verdict::Close(None);
                    }
                };
                let id = self.plain_msg_id();
                self.send(&wire::build_plain(id, &reply));
            }
            Step::WrongDc => {
                tracing::debug!(peer = %self.peer, "key exchange for another DC");
                return Verdict::Close(Some(TRANSPORT_WRONG_DC));
            }
            // Sticky: every later plain message on this connection gets -404 too.
            Step::Fail => {
                tracing::debug!(peer = %self.peer, "key exchange failed");
                let err = self.transport.encode_error(TRANSPORT_AUTH_KEY_NOT_FOUND, &mut self.rng);
                self.out.extend_from_slice(&err);
            }
        }
        Verdict::Continue
    }

    async fn on_encrypted(&mut self, data: &[u8]) -> Verdict {
        let gw = self.gw.clone();
        let keyed = self.keyed.as_mut().unwrap();
        let (key, ctx, first_salt) = (keyed.key.clone(), keyed.ctx.clone(), keyed.first_salt);
        // Every failure up to and including the msg_key check looks the same: silent close.
        let Ok(plain) = decrypt_client_message(&key, data) else {
            tracing::debug!(peer = %self.peer, "message rejected before authentication");
            return Verdict::Close(None);
        };
        let Some((header, body)) = split_plaintext(&plain) else { return Verdict::Close(None) };
        keyed.session_id = Some(header.session_id);
        // Record the key's use about once an hour, so that a key in use is never collected.
        let now_secs = gw.clock.now_secs();
        if keyed.last_used < now_secs - TOUCH_EVERY_SECS {
            keyed.last_used = now_secs;
            // The key in use, and the permanent key a temporary one acts as.
            let (keys, id, identity) = (gw.keys.clone(), key.id(), ctx.auth_key_id);
            tokio::spawn(async move {
                for k in if identity == id { vec![id] } else { vec![id, identity] } {
                    if let Err(e) = keys.touch_key(k, now_secs).await {
                        tracing::debug!(error = %e, "recording a key's use failed");
                    }
                }
            });
        }
        self.ticket.authenticated();
        let mut out = Output::default();
        // A session the registry forgot while we held it is retired: fetch its successor.
        for _ in 0..2 {
            let unique = self.rng_i64();
            let (key_id, sid) = (key.id(), header.session_id);
            let Some(session) = gw.sessions.get_or_create(key_id, sid, self.ticket.addr(), gw.clock.now_ms(), || {
                Session::new(sid, key_id, unique).with_first_salt(first_salt.0, first_salt.1)
            }) else {
                return self.refuse(Refusal::Sessions);
            };
            let live = {
                let mut s = session.lock().unwrap();
                let live = !s.is_retired();
                if live {
                    s.receive(header, body, now(&gw), &gw.salts, &mut out);
                }
                live
            };
            if live {
                return self.answer(session, key, ctx, header, out).await;
            }
        }
        Verdict::Close(None)
    }

    /// Queues what one received message asked for, sends the service replies and starts
    /// the requests that may start.
    async fn answer(
        &mut self,
        session: Arc<Mutex<Session>>,
        key: Arc<AuthKey>,
        ctx: CallCtx,
        header: herald_mtproto::session::Header,
        mut out: Output,
    ) -> Verdict {
        let gw = self.gw.clone();
        // The answers to one received message are bounded in total: past
        // `max_answer_bytes`, its requests not yet started are refused (FLOOD_WAIT_1) rather
        // than run. Those already running when the bound is crossed still answer, so the
        // total is at most the bound plus MAX_IN_FLIGHT answers.
        let budget = Arc::new(AtomicUsize::new(0));
        let mut replies = std::mem::take(&mut out.replies);
        let mut close = None;
        for ev in out.events {
            match ev {
                SessionEvent::Request { msg_id, body } => {
                    let after = Some(herald_rpc::dispatch::waits_for(&body)).filter(|a| a.len() <= MAX_WAITS_FOR);
                    let service = std::mem::take(&mut replies);
                    let (session, key, ctx, budget) = (session.clone(), key.clone(), ctx.clone(), budget.clone());
                    let origin = (key.id(), header.session_id);
                    self.requests.push(Job { origin, session, key, ctx, msg_id, body, after, blockers: Vec::new(), budget, service });
                }
                SessionEvent::Acks(_) => {}
                SessionEvent::DisconnectAfter(secs) => {
                    self.disconnect_at = Some(Instant::now() + Duration::from_secs(secs.clamp(0, 3600) as u64));
                }
                SessionEvent::DestroySession { msg_id: _, session_id } => {
                    let existed = session_id != header.session_id && gw.sessions.remove(key.id(), session_id, gw.clock.now_ms());
                    let mut body = (if existed { 0xe22045fcu32 } else { 0x62d350c9u32 }).to_le_bytes().to_vec();
                    body.extend_from_slice(&session_id.to_le_bytes());
                    replies.push(OutMessage::response(body));
                }
                SessionEvent::Flood => close = Some(TRANSPORT_FLOOD),
            }
        }
        if !self.emit(&session, &key, &mut replies).await {
            return Verdict::Close(None);
        }
        if let Some(code) = close {
            return Verdict::Close(Some(code));
        }
        self.start_ready().await
    }

    /// Starts every waiting request that may start; those that are refused without running
    /// are answered at once.
    async fn start_ready(&mut self) -> Verdict {
        while let Some(job) = self.requests.next_ready() {
            let refusal = if job.after.is_none() {
                Some(wire::rpc_error(400, "INPUT_REQUEST_TOO_LONG"))
            } else if job.after.iter().flatten().any(|m| self.requests.failed(job.origin, *m)) {
                Some(wire::rpc_error(400, "MSG_WAIT_FAILED"))
            } else if job.budget.load(Ordering::Relaxed) >= self.gw.config.max_answer_bytes {
                self.gw.metrics.answers_over_budget.inc();
                Some(wire::rpc_error(420, "FLOOD_WAIT_1"))
            } else {
                None
            };
            if let Some(error) = refusal {
                self.requests.answered(job.origin, job.msg_id, false);
                let mut reply = job.service;
                reply.push(OutMessage::response(wire::rpc_result(job.msg_id, &error)));
                if !self.emit(&job.session, &job.key, &mut reply).await {
                    return Verdict::Close(None);
                }
                continue;
            }
            let Job { origin, session, key, mut ctx, msg_id, body, budget, service, .. } = job;
            (ctx.crypto_key_id, ctx.session_id, ctx.msg_id) = (origin.0, origin.1, msg_id);
            let gw = self.gw.clone();
            let body_len = body.len();
            let task = self.requests.tables().running.spawn(async move {
                let started = Instant::now();
                let outcome = gw.dispatcher.dispatch(&ctx, &body).await;
                gw.metrics.rpc_requests.inc();
                let ok = outcome.result.is_ok();
                let result = match outcome.result {
                    Ok(bytes) => {
                        tracing::debug!(method = outcome.method, elapsed_us = started.elapsed().as_micros() as u64, "rpc ok");
                        bytes
                    }
                    Err(e) => {
                        gw.metrics.rpc_errors.inc();
                        tracing::debug!(method = outcome.method, code = e.code, error = %e.message, "rpc error");
                        wire::rpc_error(e.code, &e.message)
                    }
                };
                budget.fetch_add(result.len(), Ordering::Relaxed);
                // File bytes are not tried with gzip: mostly compressed already, and up to
                // 1 MiB of CPU per chunk for nothing.
                let reply = if wire::constructor_id(&result) == Some(UPLOAD_FILE) { result } else { wire::gzip_if_smaller(result) };
                Finished { reply: wire::rpc_result(msg_id, &reply), ok, without_updates: outcome.without_updates }
            });
            let tables = self.requests.tables();
            tables.running_bytes += body_len;
            tables.meta.insert(task.id(), Running { origin, session, key, msg_id, body_len, service });
        }
        Verdict::Continue
    }

    /// A request finished, or the bus or the key has news.
    async fn on_wake(&mut self, woke: Woke) -> Verdict {
        match woke {
            Woke::Finished(done) => self.finish(done).await,
            Woke::Signal(Signal::Event(ev)) => {
                self.on_event(ev).await;
                Verdict::Continue
            }
            Woke::Signal(Signal::Watched) => {
                self.on_watched().await;
                Verdict::Continue
            }
            Woke::Readable(_) | Woke::Timer | Woke::Shutdown => Verdict::Continue,
        }
    }

    /// Sends a finished request's answer and starts what was waiting for it.
    async fn finish(&mut self, done: Result<(tokio::task::Id, Finished), JoinError>) -> Verdict {
        let id = match &done {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let Some(run) = self.requests.take_running(id) else { return Verdict::Continue };
        let finished = match done {
            Ok((_, f)) => f,
            Err(e) => {
                // A handler panicked: the request gets an error, the connection goes on.
                tracing::error!(error = %e, "a request's task failed");
                self.gw.metrics.rpc_errors.inc();
                Finished { reply: wire::rpc_result(run.msg_id, &wire::rpc_error(500, "INTERNAL")), ok: false, without_updates: true }
            }
        };
        self.requests.answered(run.origin, run.msg_id, finished.ok);
        if !finished.without_updates {
            // Only for the key the request came with (the connection may have moved on).
            if let Some(k) = self.keyed.as_mut().filter(|k| k.key.id() == run.key.id()) {
                k.wants_updates = true;
                k.ctx.key.claim_updates(k.serial);
            }
        }
        let mut reply = run.service;
        reply.push(OutMessage::response(finished.reply));
        if !self.emit(&run.session, &run.key, &mut reply).await {
            return Verdict::Close(None);
        }
        // A temporary key just bound acts as its permanent key from now on.
        if let Some(perm) = self.keyed.as_ref().and_then(|k| k.bound.bound_to().filter(|p| *p != k.ctx.auth_key_id)) {
            self.adopt_binding(perm).await;
        }
        // A login or logout among the answers changes what this connection follows.
        self.sync_subscription().await;
        self.start_ready().await
    }

    fn rng_i64(&mut self) -> i64 {
        let mut b = [0u8; 8];
        self.rng.fill(&mut b);
        i64::from_le_bytes(b)
    }

    /// Follows login and logout (on any connection of the key): subscribe to the bound
    /// user's events and the channels they are in, or stop.
    async fn sync_subscription(&mut self) {
        let Some(k) = self.keyed.as_mut() else { return };
        let user = k.ctx.key.user();
        let current = k.subscription.as_ref().map(|(u, _)| *u);
        if user == current {
            return;
        }
        if let Some((_, old)) = k.subscription.take() {
            self.gw.bus.unsubscribe(old.id);
        }
        let Some(u) = user else { return };
        // Subscribe first, then list the channels: a post between the two reaches the user
        // topic's queue only if it is a membership change, which the queue then applies.
        let sub = self.gw.bus.subscribe(u);
        let id = sub.id;
        k.subscription = Some((u, sub));
        match self.gw.dispatcher.services().groups.user_channels(u).await {
            Ok(channels) => {
                for c in channels {
                    self.gw.bus.follow(id, c);
                }
            }
            // Without its channels the session still gets its own box; members catch up on
            // channels through getChannelDifference.
            Err(e) => tracing::warn!(error = %e, "listing a user's channels failed"),
        }
    }

    /// Re-reads the key's binding from the store (the record both this and other processes
    /// write before they announce a change) and applies it. On a storage error the current
    /// binding is kept: a failed read must not log the key out.
    async fn reload_binding(&mut self) {
        let Some(k) = self.keyed.as_ref() else { return };
        let (id, state) = (k.ctx.auth_key_id, k.ctx.key.clone());
        let before = state.user();
        match self.gw.keys.get_key(id).await {
            Ok(rec) => state.replace_user(before, rec.and_then(|r| r.user_id)),
            Err(e) => tracing::warn!(error = %e, "re-reading a key's binding failed; keeping it"),
        }
        self.sync_subscription().await;
    }

    /// Delivers an event and whatever else the subscription has queued (up to
    /// [`PUSH_BATCH`]), packed into one encrypted message and one write: under load a session
    /// gets its updates in containers instead of paying a syscall and an encryption each.
    async fn on_event(&mut self, ev: Option<Arc<Event>>) {
        let mut pushes = Vec::new();
        let mut next = Some(ev);
        while let Some(ev) = next.take() {
            if let Some(bytes) = self.push_of(ev).await {
                pushes.push(OutMessage::push(bytes));
            }
            if pushes.len() >= PUSH_BATCH || pushes.iter().map(|p| p.body.len()).sum::<usize>() >= PUSH_BATCH_BYTES {
                break;
            }
            let Some((_, sub)) = self.keyed.as_mut().and_then(|k| k.subscription.as_mut()) else { break };
            next = match sub.rx.try_recv() {
                Ok(ev) => Some(Some(ev)),
                Err(herald_domain::bus::TryRecvError::Empty) => None,
                Err(herald_domain::bus::TryRecvError::Disconnected) => Some(None),
            };
        }
        if pushes.is_empty() {
            return;
        }
        let Some(k) = self.keyed.as_ref() else { return };
        let (Some(sid), true) = (k.session_id, k.wants_updates && k.ctx.key.carries_updates(k.serial)) else { return };
        let key = k.key.clone();
        let Some(session) = self.gw.sessions.get(key.id(), sid) else { return };
        self.emit(&session, &key, &mut pushes).await;
    }

    /// The key's watched state changed: a login token accepted is pushed about, and the
    /// subscription follows the binding. Only here is the change marked seen (the binding is
    /// also followed after every answer, which must not swallow a token's push).
    async fn on_watched(&mut self) {
        let Some(k) = self.keyed.as_mut() else { return };
        let (watched, version) = k.ctx.key.watched();
        k.seen_version = version;
        let tokens = watched.tokens_accepted;
        if tokens != k.tokens_seen {
            k.tokens_seen = tokens;
            self.on_login_token().await;
        }
        self.sync_subscription().await;
    }

    /// Pushes `updateLoginToken`: the QR code this key showed was scanned and accepted; the
    /// client exports the token again to log in.
    async fn on_login_token(&mut self) {
        let now_secs = self.gw.clock.now_secs() as i32;
        let Some(k) = self.keyed.as_mut() else { return };
        let Some(sid) = k.session_id else { return };
        let key = k.key.clone();
        let Some(session) = self.gw.sessions.get(key.id(), sid) else { return };
        let mut pushes = vec![OutMessage::push(push::login_token(now_secs))];
        self.emit(&session, &key, &mut pushes).await;
    }

    /// What one event means for this connection: the serialized `Updates` to push, if any.
    async fn push_of(&mut self, ev: Option<Arc<Event>>) -> Option<Vec<u8>> {
        let gw = self.gw.clone();
        let k = self.keyed.as_mut()?;
        let Some(ev) = ev else {
            // The bus dropped this subscriber (its queue overflowed): events, a logout
            // among them, may be lost. Re-read the key's binding before subscribing again;
            // the client repairs missed updates with getDifference.
            if let Some((_, old)) = k.subscription.take() {
                self.gw.bus.unsubscribe(old.id);
            }
            self.reload_binding().await;
            return None;
        };
        let (viewer, sub_id) = k.subscription.as_ref().map(|(u, sub)| (*u, sub.id))?;
        // Queued before a logout or a login as someone else: not for this key any more.
        if k.ctx.key.user() != Some(viewer) {
            self.sync_subscription().await;
            return None;
        }
        // Joining or leaving a channel changes what this session follows.
        if let Some((channel, joined)) = push::membership(&ev) {
            if joined {
                gw.bus.follow(sub_id, channel);
            } else {
                gw.bus.unfollow(sub_id, channel);
            }
        }
        // Nothing to render for a session that will not be sent it.
        let deliverable = k.session_id.is_some() && k.wants_updates && k.ctx.key.carries_updates(k.serial);
        match push::encode(&gw.dispatcher.services().clone(), viewer, k.ctx.auth_key_id, &ev, &mut k.hashes).await {
            Push::Skip => None,
            // The key was unbound from this user, possibly in another process. The event may
            // be stale (the key logged in again since), so the store decides.
            Push::Unbound => {
                self.reload_binding().await;
                None
            }
            Push::Send(bytes) => deliverable.then_some(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::poll_order;

    /// Every turn polls each source once (a rotation that skipped one after a counter wrapped
    /// left connections asleep with a push queued).
    #[test]
    fn every_turn_polls_every_source_once() {
        for turn in 0..=u8::MAX {
            let mut order = poll_order(turn);
            order.sort_unstable();
            assert_eq!(order, [0, 1, 2], "turn {turn}");
        }
        assert_ne!(poll_order(0)[0], poll_order(1)[0], "the first place rotates");
    }
}
