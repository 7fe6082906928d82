//! `xpe show` on a running instance: tables, counters, runtime figures, neighbours and
//! interfaces.
//!
//! [`json`] reads the running state into the typed answers of [`crate::api`], which are the
//! JSON answers as they are; [`text`] lays the same answers out as tables. The forwarding
//! tables' text (`labels`, `vrf`, `all`) is [`crate::show`]'s, shared with `show --config`.

mod json;
mod text;

use xpe_dataplane::xsk::runtime::Runtime;

use super::{lock, ok, refused, Live};
use crate::ctl::{Response, What};

/// Answers one `show` request.
pub(super) fn show(live: &Live, what: What, name: Option<&str>, as_json: bool) -> Response {
    let snap = live.published.load();
    let stats = lock(&live.runtime)
        .as_ref()
        .map(Runtime::worker_stats)
        .unwrap_or_default();
    let mut out = Vec::new();
    let written = match what {
        What::Counters => {
            let c = json::counters(live, &snap, &stats);
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
            let i = json::interfaces(live, &snap, &stats);
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
            if as_json {
                return json::line(&json::vrf(&snap, &st.rib, id));
            }
            crate::show::vrf(&mut out, &snap, &st.rib, id)
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
