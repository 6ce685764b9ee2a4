//! Signals for a scenario's nodes: NTH and what it reads, either one ec2-metadata-mock and
//! one NTH per signalled node (IMDS mode) or EventBridge's events on an SQS queue for one
//! NTH (queue-processor mode).

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use super::{nth, queue, unix_now, Env, NthProcess, QUEUE_PROCESSOR};
use crate::control_plane::{free_port, log_to, servers_dir};

impl Env {
    /// NTH on `node` (instance `instance`): an ec2-metadata-mock serving a rebalance
    /// recommendation after `rebalance_in`, and, with `interruption = (notice_in, lead)`, a
    /// spot interruption notice after `notice_in`, the instance being reclaimed `lead`
    /// after the notice. NTH is the harness's ([`nth::run`]) unless `BOOSTER_E2E_NTH`
    /// names a real binary.
    pub fn signal(
        &mut self,
        node: &str,
        instance: &str,
        rebalance_in: Duration,
        interruption: Option<(Duration, Duration)>,
    ) -> Result<(), String> {
        if let Some(q) = self.queue.clone() {
            return self.signal_by_queue(q, instance, rebalance_in, interruption);
        }
        let port = free_port();
        let notice_in = interruption.map_or(Duration::from_secs(86_400), |(n, _)| n);
        let args = metadata_mock_args(port, rebalance_in, notice_in);
        let child = self.start_metadata_mock(node, instance, args)?;
        if let Ok(mut v) = self.procs.lock() {
            v.push(child);
        }
        self.nth_of.insert(
            node.to_string(),
            (port, instance.to_string(), interruption.is_some()),
        );
        self.start_nth(node)?;
        if let Some((_, lead)) = interruption {
            self.tasks.push(tokio::spawn(nth::interrupt_after_notice(
                self.asg.clone(),
                port,
                instance.to_string(),
                lead,
            )));
        }
        Ok(())
    }

    /// Starts `node`'s ec2-metadata-mock with `args`, serving the node's own identity.
    fn start_metadata_mock(
        &self,
        node: &str,
        instance: &str,
        mut args: Vec<String>,
    ) -> Result<Child, String> {
        // The node's own identity, so that a real NTH's Events name this instance (the
        // mock's default is i-1234567890abcdef0 in us-east-1f).
        let zone = self.zone_of(instance);
        let identity = self.cp.dir.join(format!("imds-{node}.json"));
        std::fs::write(&identity, imds_identity(node, instance, &zone).to_string())
            .map_err(|e| format!("metadata identity: {e}"))?;
        args.push("--config-file".into());
        args.push(identity.display().to_string());
        let (out, err) = log_to(&self.cp.dir.join(format!("imds-{node}.log")))?;
        Command::new(servers_dir().join("ec2-metadata-mock"))
            .args(&args)
            .current_dir(&self.cp.dir)
            .env("HOME", &self.cp.dir)
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("ec2-metadata-mock: {e}"))
    }

    /// Starts NTH for a signalled node: the real binary if `BOOSTER_E2E_NTH` names one, else
    /// the harness's part.
    fn start_nth(&mut self, node: &str) -> Result<(), String> {
        let Some((port, instance, notice)) = self.nth_of.get(node).cloned() else {
            return Err(format!("{node} was never signalled"));
        };
        // One NTH per node name: a node signalled again (a new machine under a reused name)
        // gets a new one.
        if let Some(old) = self.nth_running.remove(node) {
            old.stop();
        }
        if let Some(nth_bin) = std::env::var_os("BOOSTER_E2E_NTH") {
            let api_port = self
                .cp
                .url
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_string();
            nth::in_cluster_credentials(
                &self.cp.dir.join("certs"),
                crate::control_plane::ADMIN_TOKEN,
            )?;
            let (out, err) = log_to(&self.cp.dir.join(format!("nth-{node}.log")))?;
            let child = nth::real_nth(Path::new(&nth_bin), port, node, &api_port)
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("NTH: {e}"))?;
            self.nth_running
                .insert(node.to_string(), NthProcess::Real(child));
        } else {
            let task = tokio::spawn(nth::run(
                self.kube.clone(),
                port,
                node.to_string(),
                instance,
                notice,
            ));
            self.nth_running
                .insert(node.to_string(), NthProcess::Harness(task));
        }
        Ok(())
    }

    /// The zone `instance` launched in.
    fn zone_of(&self, instance: &str) -> String {
        self.record
            .lock()
            .ok()
            .and_then(|r| r.zones.get(instance).cloned())
            .unwrap_or_else(|| "eu-west-1a".into())
    }

    /// Queue-processor mode: the queue, and its processor (the real NTH if `BOOSTER_E2E_NTH`
    /// names one, else the harness's).
    pub(super) async fn start_queue_processor(
        &mut self,
        mode: queue::QueueMode,
    ) -> Result<(), String> {
        let q = queue::Queue::create(self.moto.sqs()).await?;
        let nth = if let Some(nth_bin) = std::env::var_os("BOOSTER_E2E_NTH") {
            nth::in_cluster_credentials(
                &self.cp.dir.join("certs"),
                crate::control_plane::ADMIN_TOKEN,
            )?;
            let (out, err) = log_to(&self.cp.dir.join("nth-queue-processor.log"))?;
            let api_port = self.cp.url.rsplit(':').next().unwrap_or_default();
            let child =
                queue::real_nth(Path::new(&nth_bin), &q.url, &self.moto.url, api_port, mode)
                    .stdout(out)
                    .stderr(err)
                    .spawn()
                    .map_err(|e| format!("NTH: {e}"))?;
            NthProcess::Real(child)
        } else {
            NthProcess::Harness(tokio::spawn(queue::run(self.kube.clone(), q.clone(), mode)))
        };
        self.nth_running.insert(QUEUE_PROCESSOR.to_string(), nth);
        self.queue = Some(q);
        Ok(())
    }

    /// Queue-processor mode: EventBridge puts the recommendation on the queue
    /// `rebalance_in` from now, and the interruption warning if asked (AWS then reclaims
    /// the instance `lead` after it).
    fn signal_by_queue(
        &mut self,
        q: queue::Queue,
        instance: &str,
        rebalance_in: Duration,
        interruption: Option<(Duration, Duration)>,
    ) -> Result<(), String> {
        let zone = self.zone_of(instance);
        let (asg, instance) = (self.asg.clone(), instance.to_string());
        self.tasks.push(tokio::spawn(async move {
            tokio::time::sleep(rebalance_in).await;
            let sent = q.send(queue::Ec2Event::Rebalance, &instance, &zone).await;
            if let Err(e) = sent {
                eprintln!("EventBridge: {e}");
            }
            let Some((notice_in, lead)) = interruption else {
                return;
            };
            tokio::time::sleep(notice_in.saturating_sub(rebalance_in)).await;
            let sent = q
                .send(queue::Ec2Event::Interruption, &instance, &zone)
                .await;
            if let Err(e) = sent {
                eprintln!("EventBridge: {e}");
            }
            tokio::time::sleep(lead).await;
            nth::interrupt(&asg, &instance).await;
        }));
        Ok(())
    }

    /// The port of `node`'s metadata mock, once it is signalled.
    pub fn imds_port(&self, node: &str) -> Option<u16> {
        self.nth_of.get(node).map(|(port, ..)| *port)
    }

    /// Restarts `node`'s NTH, as a rollout of its DaemonSet does: its events are kept in
    /// memory only, so it handles the recommendation again from the start.
    pub fn restart_nth(&mut self, node: &str) -> Result<(), String> {
        self.start_nth(node)
    }

    /// Signals the node that runs the most pods (in a second); returns it and its instance.
    pub async fn signal_busiest(&mut self) -> (String, String) {
        let (node, instance) = self.busiest_node().await.expect("victim");
        self.signal(&node, &instance, Duration::from_secs(1), None)
            .expect("signal");
        (node, instance)
    }
}

/// ec2-metadata-mock's arguments on `port`: a rebalance recommendation `rebalance_in` from
/// now, and a spot interruption notice `notice_in` from now.
fn metadata_mock_args(port: u16, rebalance_in: Duration, notice_in: Duration) -> Vec<String> {
    // As real IMDS does, the notice keeps its time on every read (the mock's default is
    // the time of the request, which makes NTH see a new event at every poll).
    let at = |d: Duration| {
        booster_core::Timestamp::from_unix_secs(unix_now() + d.as_secs() as i64).to_string()
    };
    let mut args: Vec<String> = vec![
        "spot".into(),
        "-n".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "--rebalance-delay-sec".into(),
        rebalance_in.as_secs().to_string(),
        "--rebalance-rec-time".into(),
        at(rebalance_in),
        // No notice within the scenario unless asked.
        "--mock-delay-sec".into(),
        notice_in.as_secs().to_string(),
        "--time".into(),
        at(notice_in + Duration::from_secs(120)),
    ];
    args.push("--mock-ip-count=1000".into());
    args
}

/// ec2-metadata-mock's configuration for one node: its instance id, zone, life cycle and
/// names, in the metadata paths and in the instance identity document NTH reads.
fn imds_identity(node: &str, instance: &str, zone: &str) -> serde_json::Value {
    let region = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
    serde_json::json!({
        "metadata": {"values": {
            "instance-id": instance,
            "instance-life-cycle": "spot",
            "instance-type": "m5.xlarge",
            "placement-availability-zone": zone,
            "local-hostname": node,
            "hostname": node
        }},
        "dynamic": {"values": {"instance-identity-document": {
            "accountid": "123456789012",
            "architecture": "x86_64",
            "availabilityzone": zone,
            "imageid": "ami-12c6146b",
            "instanceid": instance,
            "instancetype": "m5.xlarge",
            "pendingtime": "2026-01-01T00:00:00Z",
            "privateip": "10.0.0.10",
            "region": region,
            "version": "2017-09-30"
        }}}
    })
}
