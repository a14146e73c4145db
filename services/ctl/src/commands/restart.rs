//! `qos-ctl restart <dimension>`: asks the manager, which asks systemd.

use steppps::api::MANAGER;
use steppps::api::manager::Manager1Proxy;

use super::print_json;
use crate::client::{Client, Failure};

pub async fn restart(client: &Client, dimension: &str, json: bool) -> Result<u8, Failure> {
    let manager = client
        .call(&MANAGER, Manager1Proxy::new(&client.connection))
        .await?;
    client.call(&MANAGER, manager.restart(dimension)).await?;
    if json {
        print_json(&serde_json::json!({ "restarted": dimension }))?;
    } else {
        println!("restarting {dimension}");
    }
    Ok(0)
}
