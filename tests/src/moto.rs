//! A moto server (PyPI `moto[server]`) on loopback, one per caller, stopped on drop.
//! `make test` installs it into `~/.cache/aws-spots-booster/venv` and sets
//! `BOOSTER_REQUIRE_MOTO=1`, so that a missing server fails instead of skipping.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a process needs in its environment to call moto: test credentials, and no lookup
/// of instance metadata.
pub const TEST_AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Moto {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".cache/aws-spots-booster/venv/bin/moto_server");
    p.exists().then_some(p)
}

impl Moto {
    /// A fresh server, or `None` (printed as SKIPPED) when moto is not installed and the
    /// caller did not require it.
    pub fn start() -> Option<Moto> {
        let Some(bin) = moto_bin() else {
            assert!(
                std::env::var("BOOSTER_REQUIRE_MOTO").as_deref() != Ok("1"),
                "moto_server not found: run `make test`, which installs it into ~/.cache/aws-spots-booster/venv"
            );
            eprintln!("SKIPPED moto test: moto_server not found (`make test` installs it)");
            return None;
        };
        // Port 0: the kernel picks a free port as moto binds it, and moto prints it. A port
        // probed first and handed over could be taken by another test's moto meanwhile,
        // and the probe's connect would then reach that one, which goes with its test.
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stderr = child.stderr.take().expect("moto's stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // Drained for good: moto logs every request there, and a full pipe would stop it.
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(port) = line
                    .split("Running on http://127.0.0.1:")
                    .nth(1)
                    .and_then(|p| p.trim().parse::<u16>().ok())
                {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("moto did not say which port it listens on within 30 s");
            }
        };
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }
}

impl Moto {
    /// An Auto Scaling client configuration for this server (test credentials, eu-west-1),
    /// to finish and build.
    pub fn config(&self) -> aws_sdk_autoscaling::config::Builder {
        use aws_sdk_autoscaling::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_autoscaling::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
    }

    /// An Auto Scaling client for this server.
    pub fn client(&self) -> aws_sdk_autoscaling::Client {
        aws_sdk_autoscaling::Client::from_conf(self.config().build())
    }

    /// An SQS client for this server (NTH's queue in queue-processor mode).
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .build();
        aws_sdk_sqs::Client::from_conf(conf)
    }
}
