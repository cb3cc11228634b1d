//! Helpers for tests that drive peer programs: the real binary as a child process, and the
//! shared `pusher-client` harness installed with npm.
#![allow(
    dead_code,
    reason = "each peers test uses a different subset of the helpers"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a peer that cannot start fails the test"
)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Fails with the package to install when `program` is not on PATH.
pub(crate) fn require_program(program: &str, debian_package: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "`{program}` is not installed: install the Debian package `{debian_package}` (apt-get install {debian_package})"
    );
}

/// `streamcache --ephemeral --http 127.0.0.1:0 --resp 127.0.0.1:0`, killed on drop.
pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) http: SocketAddr,
    pub(crate) ready_line: String,
}

impl ServerProcess {
    pub(crate) fn start(extra_args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_streamcache"))
            .args([
                "--ephemeral",
                "--http",
                "127.0.0.1:0",
                "--resp",
                "127.0.0.1:0",
                "--log-level",
                "warn",
            ])
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the streamcache binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut ready_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut ready_line)
            .expect("read the ready line");
        let http = ready_line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("http=http://"))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no http= address in the ready line {ready_line:?}"));
        Self {
            child,
            http,
            ready_line,
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the shared tools live: `../shared` beside the repository (or one level further up
/// for a work tree nested one deeper).
fn shared_tools() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        root.join("../shared/tools"),
        root.join("../../shared/tools"),
    ]
    .into_iter()
    .find(|p| p.join("pusher-client/client.mjs").is_file())
    .unwrap_or_else(|| {
        panic!(
            "../shared/tools/pusher-client not found beside {}",
            root.display()
        )
    })
}

/// A directory holding the pusher-client harness with its dependencies installed: the one named
/// by `PUSHER_CLIENT_DIR` when it already has `node_modules`, otherwise a fresh copy in a
/// temporary directory, installed with `npm install`.
pub(crate) enum HarnessDir {
    Given(PathBuf),
    Temp(tempfile::TempDir),
}

impl HarnessDir {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::Given(p) => p,
            Self::Temp(t) => t.path(),
        }
    }
}

pub(crate) fn pusher_client_dir() -> HarnessDir {
    let given = std::env::var_os("PUSHER_CLIENT_DIR").map(PathBuf::from);
    if let Some(dir) = given
        .filter(|d| d.join("node_modules/pusher-js").is_dir() && d.join("client.mjs").is_file())
    {
        return HarnessDir::Given(dir);
    }
    require_program("npm", "npm");
    let src = shared_tools().join("pusher-client");
    let tmp = tempfile::tempdir().expect("temporary directory");
    for file in ["client.mjs", "package.json"] {
        std::fs::copy(src.join(file), tmp.path().join(file)).expect("copy the harness");
        let mut perms = std::fs::metadata(tmp.path().join(file))
            .unwrap()
            .permissions();
        #[expect(
            clippy::permissions_set_readonly_false,
            reason = "the copy must be writable; it is ours"
        )]
        perms.set_readonly(false);
        std::fs::set_permissions(tmp.path().join(file), perms).unwrap();
    }
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(tmp.path())
        .output()
        .expect("run npm install");
    assert!(
        out.status.success(),
        "npm install of the pusher-client harness failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    HarnessDir::Temp(tmp)
}

/// A `redis-server` with persistence off, listening only on a unix socket in a temporary
/// directory; killed on drop.
pub(crate) struct RedisServer {
    /// The server process.
    child: Child,
    /// Holds the socket.
    _dir: tempfile::TempDir,
    /// Its unix socket.
    pub(crate) socket: PathBuf,
}

impl RedisServer {
    /// Starts one and waits until it accepts connections.
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(&socket)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start redis-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = lines
                .next()
                .expect("redis-server exited before it was ready")
                .unwrap();
            // "Ready to accept connections" for TCP, "now ready to accept connections at" for a
            // unix socket.
            if line
                .to_ascii_lowercase()
                .contains("ready to accept connections")
            {
                break;
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            _dir: dir,
            socket,
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` and the streamcache binary, both stopped on drop.
pub(crate) struct RedisBeside {
    _redis: RedisServer,
    _ours: ServerProcess,
}

/// Starts a `redis-server` (it must be installed) and the streamcache binary side by side and
/// connects to each: `(servers, theirs, mine)`, `theirs` over Redis's unix socket, `mine` to
/// streamcache's RESP listener. Keep `servers` alive while the connections are used.
pub(crate) fn redis_beside() -> (RedisBeside, redis::Connection, redis::Connection) {
    require_program("redis-server", "redis-server");
    let redis = RedisServer::start();
    let ours = ServerProcess::start(&[]);
    let resp = ours
        .ready_line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("resp="))
        .expect("resp= in the ready line")
        .to_owned();
    let connect = |url: String| redis::Client::open(url).unwrap().get_connection().unwrap();
    let theirs = connect(format!("redis+unix://{}", redis.socket.display()));
    let mine = connect(format!("redis://{resp}/"));
    let servers = RedisBeside {
        _redis: redis,
        _ours: ours,
    };
    (servers, theirs, mine)
}

/// A small deterministic generator (xorshift64*), so a failure names a reproducible seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
