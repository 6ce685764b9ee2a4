//! How big a placeholder is: what the pods it stands for ask the scheduler for, read from
//! their Kubernetes quantities.

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::MAX_PER_SIGNAL;

/// CPU in millicores, from a Kubernetes quantity (`250m`, `1`, `0.5`).
fn cpu_millis(q: &Quantity) -> Option<u64> {
    let s = q.0.trim();
    if let Some(m) = s.strip_suffix('m') {
        return m.parse::<u64>().ok();
    }
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * 1000.0).ceil() as u64)
}

/// Bytes, from a Kubernetes quantity (`128Mi`, `1G`, `1e9`, `500k`).
fn bytes(q: &Quantity) -> Option<u64> {
    let s = q.0.trim();
    const SUFFIXES: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (num, mult) = SUFFIXES
        .iter()
        .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
        .unwrap_or((s, 1.0));
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * mult).ceil() as u64)
}

/// What a pod asks the scheduler for: (CPU millicores, memory bytes), as the scheduler
/// counts it: its containers and sidecars (restartable init containers) together, or its
/// largest plain init container if that is more. Unreadable quantities count as 0 (a
/// placeholder too small is better than none).
fn requests(p: &Pod) -> (u64, u64) {
    let of = |c: &Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .map_or((0, 0), |r| {
                (
                    r.get("cpu").and_then(cpu_millis).unwrap_or(0),
                    r.get("memory").and_then(bytes).unwrap_or(0),
                )
            })
    };
    let Some(spec) = p.spec.as_ref() else {
        return (0, 0);
    };
    let sidecar = |c: &&Container| c.restart_policy.as_deref() == Some("Always");
    let inits = spec.init_containers.iter().flatten();
    let (mut cpu, mut mem) = spec
        .containers
        .iter()
        .chain(inits.clone().filter(sidecar))
        .map(of)
        .fold((0u64, 0u64), |a, b| (a.0 + b.0, a.1 + b.1));
    for (c, m) in inits.filter(|c| !sidecar(c)).map(of) {
        cpu = cpu.max(c);
        mem = mem.max(m);
    }
    (cpu, mem)
}

/// Each placeholder's source pod and (CPU millicores, memory bytes): one per pod, or past
/// [`MAX_PER_SIGNAL`], the first that many, each asking for the average of all the pods.
pub(super) fn shares<'a>(pods: &[&'a Pod]) -> Vec<(&'a Pod, (u64, u64))> {
    if pods.len() <= MAX_PER_SIGNAL {
        pods.iter().map(|p| (*p, requests(p))).collect()
    } else {
        let (c, m) = pods
            .iter()
            .map(|p| requests(p))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let n = MAX_PER_SIGNAL as u64;
        pods.iter()
            .take(MAX_PER_SIGNAL)
            .map(|p| (*p, (c.div_ceil(n), m.div_ceil(n))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let q = |s: &str| Quantity(s.into());
        assert_eq!(cpu_millis(&q("250m")), Some(250));
        assert_eq!(cpu_millis(&q("1")), Some(1000));
        assert_eq!(cpu_millis(&q("0.5")), Some(500));
        assert_eq!(cpu_millis(&q("x")), None);
        assert_eq!(bytes(&q("128Mi")), Some(134217728));
        assert_eq!(bytes(&q("1G")), Some(1_000_000_000));
        assert_eq!(bytes(&q("1e3")), Some(1000));
        assert_eq!(bytes(&q("-1")), None);
    }

    fn pod_json(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn a_pod_asks_for_its_containers_or_its_largest_init_container() {
        let p = pod_json(serde_json::json!({"spec": {
            "initContainers": [
                {"name": "big-init", "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}},
                {"name": "sidecar", "restartPolicy": "Always",
                 "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}],
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "x"}}}]}}));
        // CPU: the init container's 2 cores beat 250m + 100m; memory: 128Mi + 32Mi beat 64Mi.
        assert_eq!(requests(&p), (2000, 160 * 1024 * 1024));
        assert_eq!(requests(&Pod::default()), (0, 0));
    }
}
