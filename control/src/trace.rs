//! `xpe trace`: one frame through the pipeline, every stage explained with names.

use std::io::Write;

use xpe_dataplane::pipeline::{self, Counters, Step, Verdict};
use xpe_dataplane::tables::{IlmAction, PortId, Snapshot};
use xpe_dataplane::xsk::capture::Traced;
use xpe_dataplane::xsk::fast::{FastTables, FastVerdict};

use crate::ctl::{Request, Response, TraceEvent, TraceRequest};
use crate::error::Failure;
use crate::rib::Rib;
use crate::show::describe_fec;

/// Headroom given to traced and replayed frames: room for a VLAN tag and [`MAX_PUSH`] labels.
///
/// [`MAX_PUSH`]: xpe_dataplane::tables::MAX_PUSH
pub const HEADROOM: usize = 256;

/// Parses hex, ignoring white space, ':' and '-' separators and a leading `0x`.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, Failure> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let digits: Vec<u8> = t
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':' && *b != b'-')
        .collect();
    if let Some(bad) = digits.iter().find(|b| !b.is_ascii_hexdigit()) {
        return Err(Failure::new(format!(
            "--frame: '{}' is not a hex digit",
            *bad as char
        )));
    }
    if digits.len() % 2 == 1 {
        return Err(
            Failure::new("--frame: odd number of hex digits").hint("a byte is two hex digits")
        );
    }
    Ok(digits
        .chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16).unwrap_or(0) as u8;
            let lo = (p[1] as char).to_digit(16).unwrap_or(0) as u8;
            hi << 4 | lo
        })
        .collect())
}

/// Hex with a space every byte and a newline every 16.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n        ")
}

/// Explains one step.
pub fn describe_step(s: &Snapshot, rib: &Rib, step: &Step) -> (&'static str, String) {
    match step {
        Step::Ingress { port, len } => {
            ("ingress", format!("{len} bytes on {}", s.port(*port).name))
        }
        Step::Ethernet {
            dst,
            src,
            ethertype,
        } => (
            "ethernet",
            format!("{src} -> {dst}, ethertype 0x{ethertype:04x}"),
        ),
        Step::Vlan { vid, pcp } => ("802.1q", format!("VLAN {vid}, PCP {pcp}")),
        Step::Attachment { attachment, vrf } => (
            "attachment",
            format!(
                "{} -> vrf {}",
                s.attachment_name(*attachment),
                s.vrf(*vrf).name
            ),
        ),
        Step::Label {
            depth,
            label,
            tc,
            bos,
            ttl,
        } => (
            "label",
            format!(
                "[{depth}] label {label}, TC {tc}, S {}, TTL {ttl}",
                u8::from(*bos)
            ),
        ),
        Step::Ilm(e) => (
            "ilm",
            match e.action {
                IlmAction::Swap { adj, out } => format!(
                    "{} -> swap to {out}, via {} {}",
                    e.label,
                    s.adjacency(adj).next_hop,
                    s.attachment_name(s.adjacency(adj).attachment)
                ),
                IlmAction::Pop { adj } => format!(
                    "{} -> pop (PHP), via {} {}",
                    e.label,
                    s.adjacency(adj).next_hop,
                    s.attachment_name(s.adjacency(adj).attachment)
                ),
                IlmAction::PopLookup { vrf } => {
                    format!("{} -> pop, look up in vrf {}", e.label, s.vrf(vrf).name)
                }
            },
        ),
        Step::ExplicitNull { label } => (
            "ilm",
            format!("{label} explicit null -> pop, continue in the global table"),
        ),
        Step::Lookup4 { vrf, dst, fec } => {
            let v = s.vrf(*vrf);
            let text = match (rib.matching4(*vrf, *dst), fec) {
                (Some((prefix, _)), Some(f)) => {
                    format!("{} -> {} {}", dst, prefix, describe_fec(s, *f))
                }
                (_, _) => format!("{dst} -> no route"),
            };
            ("lookup", format!("vrf {}: {text}", v.name))
        }
        Step::Lookup6 { vrf, dst, fec } => {
            let v = s.vrf(*vrf);
            let text = match (rib.matching6(*vrf, *dst), fec) {
                (Some((prefix, _)), Some(f)) => {
                    format!("{} -> {} {}", dst, prefix, describe_fec(s, *f))
                }
                (_, _) => format!("{dst} -> no route"),
            };
            ("lookup", format!("vrf {}: {text}", v.name))
        }
        Step::IpTtl { before, after } => ("ip ttl", format!("{before} -> {after}")),
        Step::LabelTtl { before, after } => ("label ttl", format!("{before} -> {after}")),
        Step::Impose { labels, tc, ttl } => (
            "impose",
            format!("labels {labels} (outermost first), TC {tc}, TTL {ttl}"),
        ),
        Step::EchoReply { to } => ("icmp", format!("echo request for us: reply to {to}")),
        Step::ArpReply { to } => ("arp", format!("request for our address: reply to {to}")),
        Step::Echo6Reply { to } => ("icmpv6", format!("echo request for us: reply to {to}")),
        Step::NdAdvert { target, to } => (
            "nd",
            format!("solicitation for our address {target}: advertisement to {to}"),
        ),
        Step::Icmp {
            kind,
            from,
            to,
            quoted,
            labels,
            tunnelled,
        } => {
            let ext = if *labels > 0 {
                format!(", RFC 4950 label stack of {labels}")
            } else {
                String::new()
            };
            let how = if *tunnelled {
                "; on along the LSP (RFC 3032 §2.3.2)"
            } else {
                ""
            };
            (
                "icmp error",
                format!("{kind} {from} -> {to}, quoting {quoted} bytes{ext}{how}"),
            )
        }
        Step::IcmpNotSent { why } => ("icmp error", format!("none sent: {why}")),
        Step::Fragment { mtu } => (
            "fragment",
            format!("too big for the port and DF clear: cut into IPv4 fragments of {mtu} bytes at most (RFC 791)"),
        ),
        Step::Egress { adj, .. } => {
            let a = s.adjacency(*adj);
            (
                "egress",
                format!(
                    "{} to {} ({})",
                    s.attachment_name(a.attachment),
                    a.next_hop,
                    a.mac.map_or("unresolved".into(), |m| m.to_string())
                ),
            )
        }
    }
}

/// One frame explained, stage by stage: what `xpe trace` prints, offline or live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// Each stage's name and what it found.
    pub steps: Vec<(&'static str, String)>,
    /// The verdict, as a sentence.
    pub verdict: String,
    /// The frames that go out: one, or one per IPv4 fragment (`fragments`).
    pub outputs: Vec<Vec<u8>>,
    /// Whether `outputs` are the fragments of one frame.
    pub fragments: bool,
    /// What `xpe run --fast-path xdp` does with the input.
    pub fast_path: String,
}

/// Explains what the pipeline did with a traced frame: the steps it reported, its verdict,
/// the frame it left and the ICMP error it became, if any.
pub fn explain(s: &Snapshot, rib: &Rib, fast: &FastTables, t: &Traced) -> Explained {
    let (port, input, output) = (t.port, &t.input[..], &t.output[..]);
    let mut e = Explained {
        steps: t
            .steps
            .iter()
            .map(|step| describe_step(s, rib, step))
            .collect(),
        verdict: String::new(),
        outputs: Vec::new(),
        fragments: false,
        fast_path: match fast.path(s, port, input) {
            FastVerdict::Kernel(what) => format!("kernel ({what})"),
            FastVerdict::Workers(why) => format!("workers ({why})"),
        },
    };
    let name = |p: PortId| {
        s.ports()
            .get(usize::from(p.0))
            .map_or_else(|| format!("port {}", p.0), |p| p.name.clone())
    };
    match t.verdict {
        Verdict::Forward(p) => {
            let what = match t.icmp {
                Some(k) => format!("dropped ({}); the ICMP {k} goes out", k.reason()),
                None => "forward".to_string(),
            };
            e.verdict = format!("{what} on {}, {} bytes", name(p), output.len());
            e.outputs.push(output.to_vec());
        }
        Verdict::Fragment(p) => {
            let mtu = s.ports().get(usize::from(p.0)).map_or(0, |p| p.mtu);
            let mut counters = Counters::new(s.ports().len());
            pipeline::fragment(output, usize::from(mtu), p, &mut counters, &mut |parts| {
                e.outputs.push(parts.concat());
                true
            });
            e.fragments = true;
            e.verdict = format!(
                "forward on {} as {} IPv4 fragments (labels + IP of {mtu} bytes at most)",
                name(p),
                e.outputs.len()
            );
        }
        Verdict::Drop(r) => e.verdict = format!("drop ({r})"),
        Verdict::Punt(r) => e.verdict = format!("punt to the kernel ({r})"),
    }
    e
}

/// Writes an explanation as `xpe trace` prints it.
pub fn write_text(out: &mut dyn Write, e: &Explained) -> std::io::Result<()> {
    for (i, (stage, text)) in e.steps.iter().enumerate() {
        writeln!(out, "{:>2} {:<11} {text}", i + 1, stage)?;
    }
    writeln!(out, "verdict: {}", e.verdict)?;
    for (i, o) in e.outputs.iter().enumerate() {
        if e.fragments {
            writeln!(out, "output {}: {}", i + 1, hex(o))?;
        } else {
            writeln!(out, "output: {}", hex(o))?;
        }
    }
    writeln!(out, "fast path: {}", e.fast_path)
}

/// Runs `xpe trace`.
pub fn run(
    out: &mut dyn Write,
    s: &Snapshot,
    rib: &Rib,
    interface: &str,
    frame_hex: &str,
) -> Result<(), Failure> {
    let Some(port) = s.port_by_name(interface) else {
        let names: Vec<&str> = s.ports().iter().map(|p| p.name.as_str()).collect();
        return Err(
            Failure::new(format!("no interface named \"{interface}\" in the config"))
                .hint(format!("the config has: {}", names.join(", "))),
        );
    };
    let bytes = parse_hex(frame_hex)?;
    // The same run of the pipeline as a worker's for `xpe trace --live`.
    let Some(traced) = Traced::of(s, port, &bytes) else {
        return Err(Failure::new("frame does not fit its buffer"));
    };
    let e = explain(s, rib, &FastTables::compile(s), &traced);
    write_text(out, &e).map_err(|e| Failure::new(format!("cannot write output: {e}")))
}

/// `xpe trace --live`: asks the instance at `socket` to trace the next frames that match
/// `req` and prints each as it arrives.
pub fn live(
    socket: &std::path::Path,
    req: TraceRequest,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    use std::io::BufRead;
    /// A line after the first: a traced frame or heartbeat, or the closing response.
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Line {
        Event(TraceEvent),
        Done(Response),
    }
    let mut input = crate::ctl::open_watch(socket, &Request::Trace(req))?;
    let io = |e: std::io::Error| Failure::new(format!("talking to {}: {e}", socket.display()));
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        if input.read_line(&mut line).map_err(io)? == 0 {
            return Err(Failure::new(format!(
                "{} closed the trace without a word",
                socket.display()
            )));
        }
        let parsed: Line = serde_json::from_str(&line).map_err(|e| {
            Failure::new(format!(
                "{} answered something that is not a trace line: {e}",
                socket.display()
            ))
        })?;
        match parsed {
            Line::Done(r) if first && r.ok => first = false,
            Line::Done(r) if r.ok => return Ok(()),
            Line::Done(r) => return Err(Failure::new(r.text)),
            Line::Event(TraceEvent::Heartbeat) => {}
            Line::Event(TraceEvent::Frame { text }) => {
                let w = |e: std::io::Error| Failure::new(format!("cannot write output: {e}"));
                writeln!(out, "{}", text.trim_end()).map_err(w)?;
                out.flush().map_err(w)?;
            }
        }
    }
}
