//! worker-orcd command line (stub)
pub fn main_with_args(_args: Vec<String>) -> i32 { 0 }
