//! The XDP steering program of xpe and the types it shares with userspace.
//!
//! This crate is a placeholder until the live AF_XDP runtime lands: the foundation
//! (pipeline, tables, config, offline replay) does not touch a NIC. It is kept in the
//! workspace so the layout of the project is visible from the start.
#![no_std]
