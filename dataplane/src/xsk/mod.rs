//! The Linux side of the data plane: the XDP program that steers frames into AF_XDP sockets
//! and, next, the UMEM, rings and pinned workers. This is the one module of the crate where
//! `unsafe` is allowed (STYLE.md); so far nothing here needs it.

pub mod steer;
