//! The neighbour resolver: takes what the workers learn from ARP and neighbour discovery and
//! what they could not forward for want of a MAC (gleans), asks for unresolved next hops and
//! gleaned hosts (ARP requests for IPv4, neighbour solicitations for IPv6), and lays the
//! answers over the published tables.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use xpe_dataplane::pipeline::learn::{arp_request, nd_solicit};
use xpe_dataplane::tables::{
    Adjacency, AdjacencyId, AttachmentId, Fec, FecId, LabelStack, PortId, Snapshot,
};
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::xsk::worker::{Event, Originated};

use super::edit::{publish, with_learned_hosts};
use super::{lock, Live, NeighborKey, State};
use crate::compile::{compile, host_prefix, SysfsMacs};
use crate::rib::Source;

/// ARP requests and neighbour solicitations sent per second at most, over all unresolved
/// next hops and gleaned hosts.
const ARP_PER_SECOND: usize = 64;

/// Hosts waiting for an ARP or ND answer at most; more gleans wait until some are answered.
const MAX_ASKED: usize = 1024;

/// A host learned after a glean becomes a host route (a neighbour route in the RIB) through
/// its own adjacency with the MAC it answered from: a delta, like a route change, so a
/// learned host costs its /32's path in the VRF's table and no recompile. False when it
/// cannot be a delta (a known host whose MAC changed, a /32 that already has a route, its
/// attachment gone): the caller recompiles instead, which also decides such a clash.
fn learn_host(st: &mut State, key: NeighborKey, mac: MacAddr) -> bool {
    let (port, vid, ip) = key;
    if st.hosts.contains_key(&key) || usize::from(port) >= st.base.ports().len() {
        return false;
    }
    let Some(att) = st.base.port(PortId(port)).attachment(vid) else {
        return false;
    };
    let vrf = st.base.attachment(att).vrf;
    let prefix = host_prefix(ip);
    if !st.rib.candidates(vrf, prefix).is_empty() {
        return false;
    }
    let adj = AdjacencyId(st.base.adjacencies().len() as u32);
    let fec = Fec::Forward {
        adj,
        push: LabelStack::EMPTY,
    };
    let fec_id = FecId(st.base.fecs().len() as u32);
    st.rib.set(vrf, prefix, Source::Neighbor, Some(fec_id));
    let next = st.rib.commit().ok().and_then(|_| {
        let (v4, v6) = st.rib.tables(vrf);
        st.base
            .with_vrf_tables(
                vrf,
                v4,
                v6,
                vec![Adjacency::new(att, ip, Some(mac))],
                vec![fec],
            )
            .ok()
    });
    match next {
        Some(next) => {
            st.base = next;
            st.hosts.insert(key, mac);
            true
        }
        None => {
            // Only a table out of room gets here: take the route back out of the RIB (its
            // removal waits for the next commit) and let the caller's recompile rebuild the
            // RIB and the tables from the config.
            st.rib.set(vrf, prefix, Source::Neighbor, None);
            false
        }
    }
}

/// Takes neighbour events from the workers; asks for unresolved next hops once a second
/// and for gleaned hosts when their frames are dropped (each at most once a second).
pub(super) fn neighbour_loop(live: &Live) {
    let (from_workers, to_worker) = match lock(&live.runtime).as_ref() {
        Some(rt) => (rt.learned().clone(), rt.originate().clone()),
        None => return,
    };
    let mut last_round = Instant::now() - Duration::from_secs(1);
    let mut sent_this_second = 0usize;
    while !live.stop.load(Ordering::Relaxed) {
        if last_round.elapsed() >= Duration::from_secs(1) {
            last_round = Instant::now();
            sent_this_second = 0;
            // The fast path sends only to ports that take redirects; a veth's peer may have
            // gained or lost its XDP program or GRO since (a failure is in `show counters`).
            if let Some(rt) = lock(&live.runtime).as_ref() {
                let _shown = rt.fast_refresh();
            }
            let snap = live.published.load();
            for adj in snap.adjacencies().iter().filter(|a| a.mac.is_none()) {
                if sent_this_second == ARP_PER_SECOND {
                    break;
                }
                if request(&snap, &to_worker, adj.attachment, adj.next_hop) {
                    sent_this_second += 1;
                }
            }
            let mut st = lock(&live.state);
            st.asked
                .retain(|_, at| at.elapsed() < Duration::from_secs(10));
        }
        let Ok(event) = from_workers.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        let mut st = lock(&live.state);
        match event {
            Event::Learned { port, neighbor } => {
                let key = (port.0, neighbor.vid, neighbor.ip);
                // Keep only neighbours something waits for: a flood of ARP from arbitrary
                // addresses cannot grow the tables.
                let next_hop = st.base.adjacencies().iter().any(|a| {
                    a.mac.is_none() && (a.port.0, a.vlan.map_or(0, |v| v.get()), a.next_hop) == key
                });
                if next_hop && st.learned.get(&key) != Some(&neighbor.mac) {
                    st.learned.insert(key, neighbor.mac);
                    publish(live, &st);
                } else if st.asked.remove(&key).is_some()
                    && st.hosts.get(&key) != Some(&neighbor.mac)
                {
                    if learn_host(&mut st, key, neighbor.mac) {
                        publish(live, &st);
                        continue;
                    }
                    // A host whose MAC changed: recompile with the new one.
                    st.hosts.insert(key, neighbor.mac);
                    let config = with_learned_hosts(
                        &super::edit::with_static_routes(&st),
                        &st.hosts,
                        &live.interfaces,
                    );
                    match compile(&config, &SysfsMacs) {
                        Ok(compiled) => {
                            let names = vrf_names(&st.base);
                            st.base = st.slots.assign(&compiled.snapshot);
                            st.rib = compiled.rib;
                            if let Err(e) = super::routes::restage_bgp(&mut st, &names) {
                                eprintln!("warning: BGP routes after a recompile: {e}");
                            }
                            publish(live, &st);
                        }
                        // The host does not fit the running config (it changed meanwhile).
                        Err(_) => {
                            st.hosts.remove(&key);
                        }
                    }
                }
            }
            Event::Glean { attachment, ip } => {
                let snap = live.published.load();
                let Some(att) = snap.attachments().get(usize::from(attachment.0)) else {
                    continue;
                };
                let key = (att.port.0, att.vlan.map_or(0, |v| v.get()), ip);
                let fresh = st
                    .asked
                    .get(&key)
                    .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
                if !fresh
                    || sent_this_second >= ARP_PER_SECOND
                    || (st.asked.len() >= MAX_ASKED && !st.asked.contains_key(&key))
                {
                    continue;
                }
                if request(&snap, &to_worker, attachment, ip) {
                    sent_this_second += 1;
                    st.asked.insert(key, Instant::now());
                }
            }
        }
    }
}

/// Queues a request for `target` out of an attachment, from the attachment's address of the
/// target's family: an ARP request (IPv4), or a neighbour solicitation to the target's
/// solicited-node group with our source link-layer address (IPv6, RFC 4861 §7.2.2); false
/// when the attachment has no such address or worker 0's queue is full.
fn request(
    snap: &Snapshot,
    to_worker: &crossbeam_channel::Sender<Originated>,
    attachment: AttachmentId,
    target: IpAddr,
) -> bool {
    let att = snap.attachment(attachment);
    let (mac, vid) = (snap.port(att.port).mac, att.vlan.map(|v| v.get()));
    let frame = match target {
        IpAddr::V4(target) => match att.address {
            Some(ours) => arp_request(mac, vid, ours.addr(), target),
            None => return false,
        },
        IpAddr::V6(target) => match att.address6 {
            Some(ours) => nd_solicit(mac, vid, ours.addr(), target),
            None => return false,
        },
    };
    to_worker
        .try_send(Originated {
            port: att.port,
            frame,
        })
        .is_ok()
}

/// The names of a snapshot's VRFs, by [`xpe_dataplane::tables::VrfId`].
pub(super) fn vrf_names(snap: &xpe_dataplane::tables::Snapshot) -> Vec<String> {
    snap.vrfs().iter().map(|v| v.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::Offline;
    use crate::config::Config;
    use std::net::Ipv6Addr;
    use xpe_dataplane::pipeline::learn::neighbor;
    use xpe_dataplane::tables::VrfId;

    const EXAMPLE: &str = include_str!("../../../examples/dx-pe.toml");

    /// The example with 2001:db8:a::1/64 on vpc-a's VLAN 101.
    fn running() -> State {
        let text = EXAMPLE.replacen(
            "vlan = 101                      # omit vlan for an untagged (port) attachment",
            "vlan = 101\naddress6 = \"2001:db8:a::1/64\"",
            1,
        );
        let config = Config::parse(&text, "example").unwrap();
        let compiled = compile(&config, &Offline).unwrap();
        State::new(config, compiled.snapshot, compiled.rib)
    }

    #[test]
    fn an_ipv6_host_learned_after_a_glean_is_a_host_route() {
        let mut st = running();
        let host: Ipv6Addr = "2001:db8:a::2".parse().unwrap();
        let vpc_a = st.base.vrf_by_name("vpc-a").unwrap();
        let lookup = |st: &State| {
            let fec = st.base.vrf(vpc_a).v6.lookup(u128::from(host)).unwrap();
            *st.base.fec(FecId(fec))
        };
        assert!(matches!(lookup(&st), Fec::Glean { .. }));
        let mac = MacAddr([2, 0, 0, 0, 0xaa, 2]);
        // dx0 is port 1; VLAN 101.
        assert!(learn_host(&mut st, (1, 101, IpAddr::V6(host)), mac));
        let Fec::Forward { adj, push } = lookup(&st) else {
            panic!("no host route")
        };
        let a = st.base.adjacency(adj);
        assert_eq!(
            (a.next_hop, a.mac, push.len()),
            (IpAddr::V6(host), Some(mac), 0)
        );
        assert_eq!(
            st.rib
                .candidates(vpc_a, "2001:db8:a::2/128".parse().unwrap())
                .first()
                .map(|r| r.source),
            Some(Source::Neighbor)
        );
        // Known now: a second answer changes nothing.
        assert!(!learn_host(&mut st, (1, 101, IpAddr::V6(host)), mac));
        assert_ne!(vpc_a, VrfId::GLOBAL);
    }

    #[test]
    fn ipv6_next_hops_are_asked_for_with_a_solicitation_from_our_address() {
        let st = running();
        let (to_worker, from_resolver) = crossbeam_channel::bounded(4);
        let vlan_101 = st.base.port(PortId(1)).attachment(101).unwrap();
        let target: Ipv6Addr = "2001:db8:a::2".parse().unwrap();
        assert!(request(&st.base, &to_worker, vlan_101, IpAddr::V6(target)));
        let o = from_resolver.try_recv().unwrap();
        assert_eq!(o.port, PortId(1));
        // To the solicited-node group's MAC, tagged 101, from dx0's MAC and our address.
        assert_eq!(o.frame[..6], [0x33, 0x33, 0xff, 0, 0, 2]);
        let n = neighbor(&o.frame, false).unwrap();
        assert_eq!(
            (n.vid, n.ip, n.mac),
            (
                101,
                IpAddr::V6("2001:db8:a::1".parse().unwrap()),
                st.base.port(PortId(1)).mac
            )
        );
        // VLAN 102 has no address6: nothing to ask from.
        let vlan_102 = st.base.port(PortId(1)).attachment(102).unwrap();
        assert!(!request(&st.base, &to_worker, vlan_102, IpAddr::V6(target)));
    }
}
