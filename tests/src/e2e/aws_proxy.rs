//! An HTTP proxy on 127.0.0.1 in front of moto's Auto Scaling, for what moto does not model:
//!
//! * **Throttling**: a share of the calls (every call whose number in a cycle of five is in
//!   the throttled set, so that the share is exact and the run repeatable) is answered
//!   `400 Throttling: Rate exceeded` as Auto Scaling does, without reaching moto.
//! * **Scaling activities**: moto answers DescribeScalingActivities with an empty list. The
//!   proxy keeps an activity for each SetDesiredCapacity that raised desired capacity
//!   through it (reading the group before and after), and answers with those, in AWS's
//!   words ("... changing the desired capacity from 3 to 4").
//! * **Lost replies**: while `hold` is set, a SetDesiredCapacity is carried out by moto and
//!   its reply is never sent (the call took effect; the caller never learns it), as when the
//!   caller dies or its deadline runs out between the call and the answer.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A raise of desired capacity the proxy saw go through.
#[derive(Clone, Debug)]
pub struct SeenRaise {
    /// The group.
    pub group: String,
    /// When, RFC 3339.
    pub at: String,
    /// Desired capacity before and after.
    pub from: i64,
    /// After.
    pub to: i64,
}

#[derive(Default)]
struct State {
    /// Positions in each cycle of five calls that are throttled.
    throttled: Vec<u64>,
    raises: Vec<SeenRaise>,
    /// Calls by action: (answered by moto, throttled by the proxy).
    calls: BTreeMap<String, (u64, u64)>,
}

struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    hold: AtomicBool,
    held: AtomicU64,
    seq: AtomicU64,
}

/// The proxy; stopped when dropped.
pub struct AwsProxy {
    /// `http://127.0.0.1:<port>`, the endpoint to give the booster.
    pub url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/xml"),
    );
    r
}

fn throttling() -> Response<Body> {
    reply(
        StatusCode::BAD_REQUEST,
        "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>proxy-throttled</RequestId></ErrorResponse>".into(),
    )
}

fn param(form: &[(String, String)], key: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// The value of the first `<tag>` in `xml`.
fn tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let i = xml.find(&open)? + open.len();
    let j = xml[i..].find('<')? + i;
    Some(xml[i..j].to_string())
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Whole seconds print without a fraction, as AWS's causes have them.
    booster_core::Timestamp::from_unix_secs(i64::try_from(secs).unwrap_or(0)).to_string()
}

impl Shared {
    async fn forward(
        &self,
        head: &http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Body>, String> {
        let stream = TcpStream::connect(self.upstream)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(head.method.clone())
            .uri(head.uri.clone());
        // The length is the body's own (hyper sets it): a request made from another's head
        // must not carry that one's.
        for (k, v) in &head.headers {
            if k != hyper::header::CONTENT_LENGTH {
                req = req.header(k, v);
            }
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        let mut out = Response::new(Full::new(bytes));
        *out.status_mut() = parts.status;
        for (k, v) in &parts.headers {
            if k != hyper::header::TRANSFER_ENCODING {
                out.headers_mut().insert(k, v.clone());
            }
        }
        Ok(out)
    }

    /// The group's desired capacity, as moto has it, asked with the head of the caller's
    /// request (moto routes by the service its signature names).
    async fn desired(&self, head: &http::request::Parts, group: &str) -> Option<i64> {
        let body = format!(
            "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1={group}"
        );
        let resp = self.forward(head, Bytes::from(body)).await.ok()?;
        let bytes = resp.into_body().collect().await.ok()?.to_bytes();
        tag(&String::from_utf8_lossy(&bytes), "DesiredCapacity")?
            .parse()
            .ok()
    }

    fn activities(&self, group: &str) -> Response<Body> {
        let raises: Vec<SeenRaise> = self
            .state
            .lock()
            .map(|s| {
                s.raises
                    .iter()
                    .filter(|r| r.group == group)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let members: String = raises
            .iter()
            .rev()
            .enumerate()
            .map(|(i, r)| {
                format!(
                    "<member><ActivityId>proxy-{i}</ActivityId><AutoScalingGroupName>{}</AutoScalingGroupName><Description>Launching a new EC2 instance</Description><Cause>At {} a user request explicitly set group desired capacity changing the desired capacity from {} to {}.  At {} an instance was started in response to a difference between desired and running capacity, increasing the capacity from {} to {}.</Cause><StartTime>{}</StartTime><StatusCode>Successful</StatusCode><Progress>100</Progress></member>",
                    r.group, r.at, r.from, r.to, r.at, r.from, r.to, r.at
                )
            })
            .collect();
        reply(
            StatusCode::OK,
            format!("<DescribeScalingActivitiesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><DescribeScalingActivitiesResult><Activities>{members}</Activities></DescribeScalingActivitiesResult><ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata></DescribeScalingActivitiesResponse>"),
        )
    }

    fn count(&self, action: &str, throttled: bool) {
        if let Ok(mut s) = self.state.lock() {
            let c = s.calls.entry(action.to_string()).or_default();
            if throttled {
                c.1 += 1;
            } else {
                c.0 += 1;
            }
        }
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let (head, body) = req.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return Ok(reply(StatusCode::BAD_REQUEST, "unreadable body".into()));
        };
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let action = param(&form, "Action").unwrap_or_default();
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let throttle = self
            .state
            .lock()
            .map(|s| s.throttled.contains(&(n % 5)))
            .unwrap_or(false);
        if throttle {
            self.count(&action, true);
            return Ok(throttling());
        }
        self.count(&action, false);
        let group = param(&form, "AutoScalingGroupName").unwrap_or_default();
        if action == "DescribeScalingActivities" {
            return Ok(self.activities(&group));
        }
        let before = if action == "SetDesiredCapacity" {
            self.desired(&head, &group).await
        } else {
            None
        };
        let resp = match self.forward(&head, body).await {
            Ok(r) => r,
            Err(e) => return Ok(reply(StatusCode::BAD_GATEWAY, e)),
        };
        if action == "SetDesiredCapacity" && resp.status().is_success() {
            let after = self.desired(&head, &group).await;
            if let (Some(from), Some(to)) = (before, after) {
                if to > from {
                    if let Ok(mut s) = self.state.lock() {
                        s.raises.push(SeenRaise {
                            group,
                            at: now_rfc3339(),
                            from,
                            to,
                        });
                    }
                }
            }
            if self.hold.load(Ordering::SeqCst) {
                // Carried out, never answered: the caller's deadline or death ends it.
                self.held.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
        }
        Ok(resp)
    }
}

impl AwsProxy {
    /// A proxy in front of `upstream` (moto), passing everything through.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<AwsProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State::default()),
            hold: AtomicBool::new(false),
            held: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| s.clone().handle(req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(AwsProxy {
            url: format!("http://{addr}"),
            shared,
            task,
        })
    }

    /// Throttles the calls at these positions of every cycle of five (`[1, 3]`: 40 %).
    pub fn throttle(&self, positions: &[u64]) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.throttled = positions.to_vec();
        }
    }

    /// While set, SetDesiredCapacity is carried out and never answered.
    pub fn hold_set_desired(&self, on: bool) {
        self.shared.hold.store(on, Ordering::SeqCst);
    }

    /// SetDesiredCapacity calls carried out and left unanswered.
    pub fn held(&self) -> u64 {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// The raises of desired capacity made through the proxy.
    pub fn raises(&self) -> Vec<SeenRaise> {
        self.shared
            .state
            .lock()
            .map(|s| s.raises.clone())
            .unwrap_or_default()
    }

    /// Calls by action: (passed to moto or answered by the proxy, throttled).
    pub fn calls(&self) -> BTreeMap<String, (u64, u64)> {
        self.shared
            .state
            .lock()
            .map(|s| s.calls.clone())
            .unwrap_or_default()
    }
}
