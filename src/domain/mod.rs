//! Types that can only hold valid values: keys, scopes, limits, quota windows.

pub mod alerts;
pub mod api_key;
pub mod audit;
pub mod backend;
pub mod cidr;
pub mod clamps;
pub mod cloud;
pub mod counters;
pub mod ip_class;
pub mod keep_alive;
pub mod key;
pub mod lengths;
pub mod limits;
pub mod model;
pub mod model_store;
pub mod password;
pub mod people;
pub mod scopes;
pub mod ssh_key;
pub mod time;
pub mod usage;
pub mod version;
pub mod windows;
