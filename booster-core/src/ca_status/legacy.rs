//! The legacy text format (cluster-autoscaler <= 1.29).
//!
//! ```text
//! Cluster-autoscaler status at 2023-03-27 10:38:18.7 +0000 UTC m=+1998.4:
//! Cluster-wide:
//!   Health:      Healthy (ready=10 unready=0 ...)
//! NodeGroups:
//!   Name:        spot-workers
//!   Health:      Healthy (ready=4 unready=0 (resourceUnready=0) notStarted=1 ... cloudProviderTarget=6 (minSize=3, maxSize=10))
//!   ScaleUp:     InProgress (ready=4 cloudProviderTarget=6)
//! ```
//!
//! Lines are read one by one. A group starts at its `Name:` line (the name is the rest of
//! the line: Auto Scaling group names may hold spaces, parentheses, dots and colons), and
//! takes the `Health:` and `ScaleUp:` lines that follow. Lines this parser does not know
//! (`LastProbeTime:`, `ScaleDown:`, fields of later versions) are skipped.

use super::{excerpt, CaNodeGroup, CaStatus, CaStatusError, CaStatusFormat, LEGACY_HEADER};
use crate::time::Timestamp;

#[derive(PartialEq)]
enum Section {
    Preamble,
    ClusterWide,
    NodeGroups,
}

struct Pending {
    group: CaNodeGroup,
    name_line: usize,
    has_health: bool,
}

/// What the lines after the header say.
#[derive(Default)]
struct Body {
    autoscaler_status: Option<String>,
    node_groups: Vec<CaNodeGroup>,
    /// A line only a CA status has was seen (`Initializing` or a section heading).
    recognised: bool,
}

pub(super) fn parse(input: &str) -> Result<CaStatus, CaStatusError> {
    let mut lines = input.lines().enumerate().map(|(i, l)| (i + 1, l));
    let time = read_header(&mut lines);
    let body = read_body(lines)?;
    if !body.recognised {
        return Err(CaStatusError::NotCaStatus(
            "a legacy header with neither `Initializing`, `Cluster-wide:` nor `NodeGroups:` after it"
                .to_string(),
        ));
    }
    Ok(CaStatus {
        format: CaStatusFormat::Legacy,
        time,
        autoscaler_status: body.autoscaler_status,
        node_groups: body.node_groups,
    })
}

/// Reads up to and including the header line, and returns the time it carries.
fn read_header<'a>(lines: impl Iterator<Item = (usize, &'a str)>) -> Option<Timestamp> {
    // The header may be preceded by blank lines; `parse` already checked it is there.
    for (_, line) in lines {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix(LEGACY_HEADER) {
            // An unreadable time is not fatal: the ConfigMap's annotation also carries it.
            return Timestamp::parse_go(rest.trim_end_matches(':')).ok();
        }
    }
    None
}

/// Reads the lines after the header: the section headings, and the groups of the
/// `NodeGroups:` section.
fn read_body<'a>(lines: impl Iterator<Item = (usize, &'a str)>) -> Result<Body, CaStatusError> {
    let mut body = Body::default();
    let mut section = Section::Preamble;
    let mut groups = Groups::default();
    for (n, raw) in lines {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if section == Section::Preamble && line == "Initializing" {
            body.autoscaler_status = Some("Initializing".to_string());
            body.recognised = true;
            continue;
        }
        if let Some(heading) = section_heading(line) {
            section = heading;
            body.recognised = true;
            continue;
        }
        if section == Section::NodeGroups {
            groups.line(n, line)?;
        }
    }
    body.node_groups = groups.finish()?;
    Ok(body)
}

fn section_heading(line: &str) -> Option<Section> {
    match line {
        "Cluster-wide:" => Some(Section::ClusterWide),
        "NodeGroups:" => Some(Section::NodeGroups),
        _ => None,
    }
}

/// The `NodeGroups:` section as read so far.
#[derive(Default)]
struct Groups {
    done: Vec<CaNodeGroup>,
    current: Option<Pending>,
}

impl Groups {
    /// One line of the section: a `Name:` line starts a group, the `Health:` and `ScaleUp:`
    /// lines after it fill it in.
    fn line(&mut self, n: usize, line: &str) -> Result<(), CaStatusError> {
        if let Some(rest) = line.strip_prefix("Name:") {
            self.close()?;
            let name = rest.trim();
            if name.is_empty() {
                return Err(err(n, "`Name:` line without a name"));
            }
            self.current = Some(Pending {
                group: CaNodeGroup {
                    name: name.to_string(),
                    ..CaNodeGroup::default()
                },
                name_line: n,
                has_health: false,
            });
        } else if let Some(rest) = line.strip_prefix("Health:") {
            let Some(p) = self.current.as_mut() else {
                return Err(err(n, "`Health:` line before any `Name:` line"));
            };
            if p.has_health {
                return Err(err(
                    n,
                    format!("second `Health:` line for group {:?}", p.group.name),
                ));
            }
            parse_health(n, rest, &mut p.group)?;
            p.has_health = true;
        } else if let Some(rest) = line.strip_prefix("ScaleUp:") {
            if let Some(p) = self.current.as_mut() {
                p.group.scale_up = Some(status_word(n, rest, "ScaleUp")?);
            }
        }
        Ok(())
    }

    /// Ends the group being read, which must have had its `Health:` line.
    fn close(&mut self) -> Result<(), CaStatusError> {
        if let Some(p) = self.current.take() {
            if !p.has_health {
                return Err(err(
                    p.name_line,
                    format!("group {:?} has no `Health:` line", p.group.name),
                ));
            }
            self.done.push(p.group);
        }
        Ok(())
    }

    /// The groups, in input order, once the input ends.
    fn finish(mut self) -> Result<Vec<CaNodeGroup>, CaStatusError> {
        self.close()?;
        Ok(self.done)
    }
}

/// The first word of a condition line: `Healthy (ready=...)` -> `Healthy`.
fn status_word(line: usize, rest: &str, field: &str) -> Result<String, CaStatusError> {
    let word = rest.split_whitespace().next().unwrap_or("");
    if word.is_empty() || !word.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(err(
            line,
            format!(
                "`{field}:` has no status word before its counts: {:?}",
                excerpt(rest.trim())
            ),
        ));
    }
    Ok(word.to_string())
}

/// `Healthy (ready=4 unready=0 (resourceUnready=0) notStarted=1 ... (minSize=3, maxSize=10))`.
/// Counts are `key=value` pairs; brackets and commas around them carry no meaning.
fn parse_health(line: usize, rest: &str, group: &mut CaNodeGroup) -> Result<(), CaStatusError> {
    group.health = Some(status_word(line, rest, "Health")?);
    for token in rest.split_whitespace().skip(1) {
        let token = token.trim_matches(|c| c == '(' || c == ')' || c == ',');
        let Some((key, value)) = token.split_once('=') else {
            continue;
        };
        let slot = match key {
            "ready" => &mut group.ready,
            "unready" => &mut group.unready,
            "notStarted" => &mut group.not_started,
            "registered" => &mut group.registered,
            "longUnregistered" => &mut group.long_unregistered,
            "cloudProviderTarget" => &mut group.cloud_provider_target,
            "minSize" => &mut group.min_size,
            "maxSize" => &mut group.max_size,
            // resourceUnready, longNotStarted and counts added later are not used.
            _ => continue,
        };
        *slot = value.parse().map_err(|_| {
            err(
                line,
                format!("`{key}` is {:?}, not a count", excerpt(value)),
            )
        })?;
    }
    Ok(())
}

fn err(line: usize, what: impl Into<String>) -> CaStatusError {
    CaStatusError::Legacy {
        line,
        what: what.into(),
    }
}
