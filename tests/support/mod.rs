//! Test support shared by the integration tests (`mod support;`). Each test crate uses a
//! different part of it, hence the dead_code allowance.
#![allow(dead_code)]

pub mod apiserver;
pub mod operator;
pub mod prometheus;
pub mod tools;
