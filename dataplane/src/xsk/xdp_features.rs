//! Which XDP actions a device supports, as the kernel's `netdev` generic netlink family
//! reports them (`NETDEV_CMD_DEV_GET`, the `xdp-features` of `ynl --family netdev`).
//!
//! The fast path needs it for one fact: a DEVMAP redirect to a device succeeds only where the
//! device advertises `NETDEV_XDP_ACT_NDO_XMIT`. A veth does so only while its peer has an XDP
//! program or GRO on; elsewhere the kernel drops every redirected frame after the program has
//! returned, too late to hand it to the workers. rtnetlink does not carry these flags, so the
//! `netdev` family is asked through netlink-packet-generic, with its message type below.

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, NetlinkMessage, NetlinkPayload, NlasIterator,
    ParseableParametrized, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};

/// `NETDEV_XDP_ACT_NDO_XMIT` (include/uapi/linux/netdev.h): the device transmits frames
/// other devices' XDP programs redirect to it.
pub const XDP_ACT_NDO_XMIT: u64 = 1 << 2;

/// `NETDEV_CMD_DEV_GET`.
const CMD_DEV_GET: u8 = 1;
/// `NETDEV_A_DEV_IFINDEX`.
const ATTR_IFINDEX: u16 = 1;
/// `NETDEV_A_DEV_XDP_FEATURES`.
const ATTR_XDP_FEATURES: u16 = 3;

/// A message of the `netdev` family: a command and its attributes as (type, value).
#[derive(Debug, Clone)]
struct Netdev {
    cmd: u8,
    attrs: Vec<(u16, Vec<u8>)>,
}

impl GenlFamily for Netdev {
    fn family_name() -> &'static str {
        "netdev"
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        1
    }
}

impl Netdev {
    fn nlas(&self) -> Vec<DefaultNla> {
        self.attrs
            .iter()
            .map(|(kind, value)| DefaultNla::new(*kind, value.clone()))
            .collect()
    }
}

impl Emitable for Netdev {
    fn buffer_len(&self) -> usize {
        self.nlas().as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.nlas().as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for Netdev {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let mut attrs = Vec::new();
        for nla in NlasIterator::new(buf) {
            let nla = nla?;
            attrs.push((nla.kind(), nla.value().to_vec()));
        }
        Ok(Netdev {
            cmd: header.cmd,
            attrs,
        })
    }
}

/// Why the features could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the XDP features of interface {ifindex} (generic netlink, netdev family): {detail}")]
pub struct FeaturesError {
    /// The interface.
    pub ifindex: u32,
    /// Why.
    pub detail: String,
}

/// One request, one answer over a generic netlink socket.
fn ask<F>(socket: &Socket, msg: GenlMessage<F>) -> Result<GenlMessage<F>, String>
where
    F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + std::fmt::Debug,
{
    let mut msg = msg;
    msg.finalize();
    let mut nl = NetlinkMessage::from(msg);
    nl.header.flags = NLM_F_REQUEST;
    nl.finalize();
    let mut tx = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut tx);
    socket.send(&tx, 0).map_err(|e| e.to_string())?;
    let mut rx = Vec::with_capacity(8192);
    socket.recv(&mut rx, 0).map_err(|e| e.to_string())?;
    let answer = NetlinkMessage::<GenlMessage<F>>::deserialize(&rx).map_err(|e| e.to_string())?;
    match answer.payload {
        NetlinkPayload::InnerMessage(m) => Ok(m),
        NetlinkPayload::Error(e) => Err(e.to_string()),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// The XDP features (`NETDEV_XDP_ACT_*` bits) of interface `ifindex` in this namespace.
pub fn xdp_features(ifindex: u32) -> Result<u64, FeaturesError> {
    NetdevFamily::open()
        .map_err(|detail| FeaturesError { ifindex, detail })?
        .features(ifindex)
}

/// A generic netlink socket with the kernel's `netdev` family resolved, to ask about several
/// interfaces in a row.
pub struct NetdevFamily {
    socket: Socket,
    id: u16,
}

impl NetdevFamily {
    /// Opens the socket and resolves the family.
    pub fn open() -> Result<NetdevFamily, String> {
        let socket = Socket::new(NETLINK_GENERIC).map_err(|e| e.to_string())?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| e.to_string())?;
        let family = ask(
            &socket,
            GenlMessage::from_payload(GenlCtrl {
                cmd: GenlCtrlCmd::GetFamily,
                nlas: vec![GenlCtrlAttrs::FamilyName("netdev".into())],
            }),
        )
        .map_err(|e| format!("no netdev family (kernel before 6.3?): {e}"))?;
        let id = family
            .payload
            .nlas
            .iter()
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or("the netdev family has no id")?;
        Ok(NetdevFamily { socket, id })
    }

    /// The XDP features (`NETDEV_XDP_ACT_*` bits) of interface `ifindex`.
    pub fn features(&self, ifindex: u32) -> Result<u64, FeaturesError> {
        let fail = |detail: String| FeaturesError { ifindex, detail };
        let mut request = GenlMessage::from_payload(Netdev {
            cmd: CMD_DEV_GET,
            attrs: vec![(ATTR_IFINDEX, ifindex.to_ne_bytes().to_vec())],
        });
        request.set_resolved_family_id(self.id);
        let answer = ask(&self.socket, request).map_err(fail)?;
        answer
            .payload
            .attrs
            .iter()
            .find(|(kind, _)| *kind == ATTR_XDP_FEATURES)
            .and_then(|(_, v)| Some(u64::from_ne_bytes(v.as_slice().try_into().ok()?)))
            .ok_or_else(|| fail("the answer has no xdp-features".into()))
    }
}
