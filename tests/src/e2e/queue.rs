//! AWS Node Termination Handler in queue-processor mode, as NTH 1.25 runs it (one
//! Deployment for the cluster) with `enableSqsTerminationDraining=true`, `taintNode=true`,
//! `emitKubernetesEvents=true`, `useProviderId=true`, and `cordonOnly` as the scenario
//! asks; and EventBridge's part, which puts EC2's events on the queue.
//!
//! The queue is an SQS queue in moto. Each message body is the raw EventBridge event (NTH
//! unwraps no SNS envelope for EC2 events), `source` `aws.ec2` with the `detail-type`
//! `EC2 Instance Rebalance Recommendation` or `EC2 Spot Instance Interruption Warning`.
//! For either, NTH finds the Node whose `spec.providerID` names the instance, writes its
//! Event, taints (`…/rebalance-recommendation` or `…/spot-itn`, the value its event id),
//! cordons, and, **unless `cordonOnly`, drains through the Eviction API even for a
//! rebalance recommendation**; the message is deleted once that is done.
//!
//! With `BOOSTER_E2E_NTH` the real binary runs in this mode instead ([`real_nth`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::Client;

use super::nth::{self, ITN_TAINT, REBALANCE_TAINT};
use super::rfc3339_now;

/// How the queue processor is configured beyond NTH's recommended settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueueMode {
    /// `cordonOnly=true`: cordon (and taint), never drain, for every kind of event.
    pub cordon_only: bool,
}

/// NTH's SQS queue in moto.
#[derive(Clone, Debug)]
pub struct Queue {
    /// The SQS client pointed at moto.
    pub sqs: aws_sdk_sqs::Client,
    /// The queue's URL (NTH's `QUEUE_URL`).
    pub url: String,
}

/// Every SQS call the harness makes has this deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The two EC2 events NTH's queue processor acts on here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ec2Event {
    /// A rebalance recommendation.
    Rebalance,
    /// A spot interruption warning (the two-minute notice).
    Interruption,
}

impl Ec2Event {
    fn detail_type(self) -> &'static str {
        match self {
            Ec2Event::Rebalance => "EC2 Instance Rebalance Recommendation",
            Ec2Event::Interruption => "EC2 Spot Instance Interruption Warning",
        }
    }
}

impl Queue {
    /// Creates the queue.
    pub async fn create(sqs: aws_sdk_sqs::Client) -> Result<Queue, String> {
        let out = tokio::time::timeout(
            CALL_TIMEOUT,
            sqs.create_queue().queue_name("nth-events").send(),
        )
        .await
        .map_err(|_| "CreateQueue: no answer".to_string())?
        .map_err(|e| format!("CreateQueue: {e:?}"))?;
        let url = out
            .queue_url()
            .ok_or("CreateQueue: no queue URL")?
            .to_string();
        Ok(Queue { sqs, url })
    }

    /// EventBridge's part: puts EC2's `what` about `instance` on the queue, as its rule's
    /// target does.
    pub async fn send(&self, what: Ec2Event, instance: &str, zone: &str) -> Result<(), String> {
        let now = rfc3339_now();
        let mut detail = serde_json::json!({"instance-id": instance});
        if what == Ec2Event::Interruption {
            detail["instance-action"] = "terminate".into();
        }
        let body = serde_json::json!({
            "version": "0",
            "id": format!("{instance}-{}-{}", what.detail_type().len(), super::unix_now()),
            "detail-type": what.detail_type(),
            "source": "aws.ec2",
            "account": "123456789012",
            "time": now,
            "region": "eu-west-1",
            "resources": [format!("arn:aws:ec2:{zone}:instance/{instance}")],
            "detail": detail,
        });
        tokio::time::timeout(
            CALL_TIMEOUT,
            self.sqs
                .send_message()
                .queue_url(&self.url)
                .message_body(body.to_string())
                .send(),
        )
        .await
        .map_err(|_| "SendMessage: no answer".to_string())?
        .map(|_| ())
        .map_err(|e| format!("SendMessage: {e:?}"))
    }
}

/// What one message asks for, if NTH acts on it: the event, its id, the instance.
fn parse(body: &str) -> Option<(Ec2Event, String, String)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if v.get("source")?.as_str()? != "aws.ec2" {
        return None;
    }
    let what = match v.get("detail-type")?.as_str()? {
        "EC2 Instance Rebalance Recommendation" => Ec2Event::Rebalance,
        "EC2 Spot Instance Interruption Warning" => Ec2Event::Interruption,
        _ => return None,
    };
    let id = v.get("id")?.as_str()?.to_string();
    let instance = v.get("detail")?.get("instance-id")?.as_str()?.to_string();
    Some((what, id, instance))
}

/// NTH's event id, which is also its taint's value: the kind and the EventBridge id in hex,
/// cut to a label value's 63 characters.
fn event_id(what: Ec2Event, id: &str) -> String {
    let kind = match what {
        Ec2Event::Rebalance => "rebalance-recommendation-event",
        Ec2Event::Interruption => "spot-itn-event",
    };
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{kind}-{hex}").chars().take(63).collect()
}

/// The Node whose `spec.providerID` is `aws:///<zone>/<instance>` (`useProviderId=true`).
async fn node_of(nodes: &Api<Node>, instance: &str) -> Option<String> {
    let suffix = format!("/{instance}");
    nodes
        .list(&Default::default())
        .await
        .ok()?
        .items
        .into_iter()
        .find_map(|n| {
            let pid = n.spec.as_ref()?.provider_id.as_deref()?;
            (pid.starts_with("aws:///") && pid.ends_with(&suffix)).then_some(n.metadata.name?)
        })
}

/// What NTH does with one event about `node`.
async fn handle(
    kube: &Client,
    mode: QueueMode,
    what: Ec2Event,
    id: &str,
    node: &str,
    instance: &str,
) {
    let nodes: Api<Node> = Api::all(kube.clone());
    let (reason, message, taint) = match what {
        Ec2Event::Rebalance => (
            "RebalanceRecommendation",
            format!(
                "Rebalance recommendation event received. Instance {instance} will be cordoned at {} \n",
                rfc3339_now()
            ),
            REBALANCE_TAINT,
        ),
        Ec2Event::Interruption => (
            "SpotInterruption",
            format!(
                "Spot Interruption notice for instance {instance} was sent at {} \n",
                rfc3339_now()
            ),
            ITN_TAINT,
        ),
    };
    nth::event(kube, node, "nth-queue-processor", instance, reason, message).await;
    let value = event_id(what, id);
    nth::taint_and_cordon(&nodes, node, Some((taint, &value))).await;
    if !mode.cordon_only {
        nth::drain(kube, node, Instant::now() + Duration::from_secs(120)).await;
    }
}

/// The queue processor: runs until aborted. Each event is handled once (NTH's event store
/// keeps their ids) by its own task (NTH's workers), and its message deleted afterwards.
pub async fn run(kube: Client, queue: Queue, mode: QueueMode) {
    let nodes: Api<Node> = Api::all(kube.clone());
    let mut seen: BTreeSet<String> = BTreeSet::new();
    loop {
        let got = tokio::time::timeout(
            CALL_TIMEOUT,
            queue
                .sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .visibility_timeout(20)
                .send(),
        )
        .await;
        let messages = match got {
            Ok(Ok(out)) => out.messages.unwrap_or_default(),
            Ok(Err(e)) => {
                eprintln!("nth queue: ReceiveMessage: {e:?}");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        for m in messages {
            let (Some(body), Some(receipt)) = (m.body, m.receipt_handle) else {
                continue;
            };
            // A message NTH does not act on stays for the visibility timeout, as with NTH.
            let Some((what, id, instance)) = parse(&body) else {
                continue;
            };
            let Some(node) = node_of(&nodes, &instance).await else {
                continue;
            };
            let (kube, queue) = (kube.clone(), queue.clone());
            let fresh = seen.insert(id.clone());
            tokio::spawn(async move {
                if fresh {
                    handle(&kube, mode, what, &id, &node, &instance).await;
                }
                let deleted = queue
                    .sqs
                    .delete_message()
                    .queue_url(&queue.url)
                    .receipt_handle(receipt)
                    .send();
                if let Ok(Err(e)) = tokio::time::timeout(CALL_TIMEOUT, deleted).await {
                    eprintln!("nth queue: DeleteMessage: {e:?}");
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The real NTH binary (`BOOSTER_E2E_NTH`) in queue-processor mode, configured through its
/// environment as the Helm chart renders it, with AWS (SQS, EC2's DescribeInstances for the
/// instance's zone) at moto. The managed-tag check is off: moto's instances do not carry the
/// group's tags.
pub fn real_nth(
    bin: &Path,
    queue_url: &str,
    moto_url: &str,
    api_port: &str,
    mode: QueueMode,
) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NODE_NAME", "nth-queue-processor")
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", api_port)
        .env("ENABLE_SQS_TERMINATION_DRAINING", "true")
        .env("QUEUE_URL", queue_url)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT", moto_url)
        .env("CORDON_ONLY", mode.cordon_only.to_string())
        .env("TAINT_NODE", "true")
        .env("EMIT_KUBERNETES_EVENTS", "true")
        .env("USE_PROVIDER_ID", "true")
        .env("CHECK_TAG_BEFORE_DRAINING", "false")
        .env("IGNORE_DAEMON_SETS", "true")
        .env("DELETE_LOCAL_DATA", "true")
        .env("POD_TERMINATION_GRACE_PERIOD", "-1")
        .env("NODE_TERMINATION_GRACE_PERIOD", "120")
        .env("LOG_LEVEL", "debug");
    for (k, v) in crate::moto::TEST_AWS_ENV {
        c.env(k, v);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ec2_rebalance_and_interruption_events_are_acted_on() {
        let ok = r#"{"source":"aws.ec2","detail-type":"EC2 Instance Rebalance Recommendation","id":"e1","detail":{"instance-id":"i-1"}}"#;
        assert_eq!(
            parse(ok),
            Some((Ec2Event::Rebalance, "e1".into(), "i-1".into()))
        );
        let other = ok.replace("aws.ec2", "aws.autoscaling");
        assert_eq!(parse(&other), None);
        let state = ok.replace("Rebalance Recommendation", "State-change Notification");
        assert_eq!(parse(&state), None);
        assert_eq!(parse("not json"), None);
    }

    #[test]
    fn the_event_id_is_a_label_value() {
        let id = event_id(Ec2Event::Rebalance, "5e55d5e-dd55-55");
        assert!(id.starts_with("rebalance-recommendation-event-35653535"));
        assert!(id.len() <= 63);
    }
}
