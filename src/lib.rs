#![forbid(unsafe_code)]
//! securescore: Microsoft Secure Score for Kubernetes.
//!
//! The data's path reads top to bottom: `api` (the CRD types), `engine` (pure evaluation and
//! scoring), `catalog` (built-in actions), `inventory` (where objects come from), `controller`
//! (the operator), `cli` (the binary's subcommands).

pub mod api;
pub mod catalog;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod http;
pub mod inventory;
pub mod metrics;
pub mod text;
