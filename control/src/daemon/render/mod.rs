//! `xpe show` on a running instance: tables, counters, runtime figures, neighbours and
//! interfaces.
//!
//! [`json`] reads the running state into the typed answers of [`crate::api`], which are the
//! JSON answers as they are; [`text`] lays the same answers out as tables. The forwarding
//! tables' text (`labels`, `vrf`, `all`) is [`crate::show`]'s, shared with `show --config`.

pub(super) mod json;
mod text;

use super::{lock, ok, refused, Live};
use crate::ctl::{Response, What};
use std::io::Write;

/// Answers one `show` request.
pub(super) fn show(live: &Live, what: What, name: Option<&str>, as_json: bool) -> Response {
    let snap = live.published.load();
    let (stats, fast) = super::readings(live);
    let mut out = Vec::new();
    let written = match what {
        What::Counters => {
            let c = json::counters(live, &snap, &stats, fast.as_ref());
            return if as_json {
                json::line(&c)
            } else {
                ok(text::counters(&c))
            };
        }
        What::Runtime => {
            let r = json::runtime(live, &stats);
            return if as_json {
                json::line(&r)
            } else {
                ok(text::runtime(&r))
            };
        }
        What::Neighbors => {
            let n = json::neighbors(live, &snap);
            return if as_json {
                json::line(&n)
            } else {
                ok(text::neighbors(&n))
            };
        }
        What::Interfaces => {
            let i = json::interfaces(live, &snap, &stats, fast.as_ref());
            return if as_json {
                json::line(&i)
            } else {
                ok(text::interfaces(&i))
            };
        }
        What::Bgp => {
            let Some(status) = lock(&live.bgp).clone() else {
                return refused(
                    "this xpe runs no BGP: its config has no [bgp] section (docs/bgp.md)",
                );
            };
            let status = lock(&status).clone();
            return if as_json {
                json::line(&status)
            } else {
                ok(super::bgp::text(&status))
            };
        }
        What::Vrf => {
            let Some(name) = name else {
                return refused("show vrf needs a VRF name");
            };
            let Some(id) = snap.vrf_by_name(name) else {
                let names: Vec<&str> = snap.vrfs().iter().map(|v| v.name.as_str()).collect();
                return refused(format!(
                    "no vrf named \"{name}\" (running: {})",
                    names.join(", ")
                ));
            };
            // The routes come from the RIB, whose FECs are those of the published snapshot:
            // both change together under the state lock.
            let st = lock(&live.state);
            let bgp = super::bgp_details(live, id);
            if as_json {
                let mut v = json::vrf(&snap, &st.rib, id);
                for r in &mut v.routes {
                    if r.origin == crate::api::RouteOrigin::Bgp {
                        r.bgp = bgp.get(&r.prefix).cloned();
                    }
                }
                return json::line(&v);
            }
            crate::show::vrf(&mut out, &snap, &st.rib, id).and_then(|()| {
                if bgp.is_empty() {
                    return Ok(());
                }
                let mut rows: Vec<(&String, &crate::api::BgpRoute)> = bgp.iter().collect();
                rows.sort_by(|a, b| a.0.cmp(b.0));
                writeln!(
                    out,
                    "BGP routes: where learned, RD, route targets, VPN label, AS path"
                )?;
                for (prefix, b) in rows {
                    let some = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                    writeln!(
                        out,
                        "B    {:<24} {} {}, rd {}, rt {}, label {}, as-path {}{}",
                        prefix,
                        b.from,
                        b.next_hop,
                        some(&b.rd),
                        if b.route_targets.is_empty() {
                            "-".to_string()
                        } else {
                            b.route_targets.join(",")
                        },
                        b.vpn_label.map_or("-".into(), |l| l.to_string()),
                        if b.as_path.is_empty() {
                            "-".to_string()
                        } else {
                            b.as_path
                                .iter()
                                .map(u32::to_string)
                                .collect::<Vec<_>>()
                                .join(" ")
                        },
                        if b.stale { " (stale)" } else { "" }
                    )?;
                }
                Ok(())
            })
        }
        What::Labels if as_json => return json::line(&json::labels(&snap)),
        What::Labels => crate::show::labels(&mut out, &snap),
        What::All if as_json => return json::line(&json::all(&snap, &lock(&live.state).rib)),
        What::All => crate::show::all(&mut out, &snap, &lock(&live.state).rib),
    };
    match written {
        Ok(()) => ok(String::from_utf8_lossy(&out).into_owned()),
        Err(e) => refused(format!("cannot format: {e}")),
    }
}
