//! `qos-ctl status` and `qos-ctl dimensions`: what the manager knows.

use steppps::api::MANAGER;
use steppps::api::manager::{Manager1Proxy, SystemStatus};

use super::print_json;
use crate::client::{Client, Failure};
use crate::table;

/// Prints every dimension's status; exit status 0 when the system is ok, 1 when degraded.
pub async fn status(client: &Client, json: bool) -> Result<u8, Failure> {
    let manager = client
        .call(&MANAGER, Manager1Proxy::new(&client.connection))
        .await?;
    let status = client.call(&MANAGER, manager.get_status()).await?;
    if json {
        print_json(&status)?;
    } else {
        print!("{}", render(&status));
    }
    Ok(if status.overall == "ok" { 0 } else { 1 })
}

fn render(status: &SystemStatus) -> String {
    let rows: Vec<Vec<String>> = status
        .dimensions
        .iter()
        .map(|d| {
            let health = match (d.present, d.healthy) {
                (false, _) => "-".to_string(),
                (true, true) => "ok".to_string(),
                (true, false) => "failing".to_string(),
            };
            vec![
                d.name.clone(),
                d.state.clone(),
                health,
                table::or_dash(&d.version),
                if d.pid == 0 {
                    "-".into()
                } else {
                    d.pid.to_string()
                },
                d.unit.clone(),
                d.detail.clone(),
            ]
        })
        .collect();
    let (ready, expected) = status.counts();
    format!(
        "{}\n{}: {ready} of {expected} expected dimensions ready\n",
        table::render(
            &[
                "DIMENSION",
                "STATE",
                "HEALTH",
                "VERSION",
                "PID",
                "UNIT",
                "DETAIL"
            ],
            &rows
        ),
        status.overall
    )
}

pub async fn dimensions(client: &Client, json: bool) -> Result<u8, Failure> {
    let manager = client
        .call(&MANAGER, Manager1Proxy::new(&client.connection))
        .await?;
    let entries = client.call(&MANAGER, manager.list_dimensions()).await?;
    if json {
        print_json(&entries)?;
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    e.name.clone(),
                    e.bus_name.clone(),
                    e.object_path.clone(),
                    e.unit.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(&["DIMENSION", "BUS NAME", "OBJECT", "UNIT"], &rows)
        );
    }
    Ok(0)
}
