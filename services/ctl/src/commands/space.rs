//! `qos-ctl space [VIEW]`: the machine's inventory from the space dimension.

use steppps::api::SPACE;
use steppps::api::space::Space1Proxy;
use steppps::api::space::{
    Cpu, Devices, Inventory, Memory, NetInterface, OsInfo, PowerSupply, Pressure, Storage,
    ThermalZone,
};

use super::print_json;
use crate::cli::SpaceView;
use crate::client::{Client, Failure};
use crate::table::{self, bytes, or_dash};

pub async fn space(client: &Client, view: Option<SpaceView>, json: bool) -> Result<u8, Failure> {
    let space = client
        .call(&SPACE, Space1Proxy::new(&client.connection))
        .await?;
    macro_rules! show {
        ($call:expr, $render:expr) => {{
            let value = client.call(&SPACE, $call).await?;
            if json {
                print_json(&value)?
            } else {
                print!("{}", $render(&value))
            }
        }};
    }
    match view {
        None => show!(space.get_inventory(), render_inventory),
        Some(SpaceView::Os) => show!(space.get_os(), render_os),
        Some(SpaceView::Cpu) => show!(space.get_cpu(), render_cpu),
        Some(SpaceView::Memory) => show!(space.get_memory(), render_memory),
        Some(SpaceView::Disks) => show!(space.get_storage(), render_storage),
        Some(SpaceView::Net) => show!(space.get_network(), |n: &Vec<NetInterface>| render_network(
            n
        )),
        Some(SpaceView::Devices) => show!(space.get_devices(), render_devices),
        Some(SpaceView::Thermal) => {
            show!(space.get_thermal(), |t: &Vec<ThermalZone>| render_thermal(
                t
            ))
        }
        Some(SpaceView::Power) => show!(space.get_power(), |p: &Vec<PowerSupply>| render_power(p)),
        Some(SpaceView::Pressure) => show!(space.get_pressure(), render_pressure),
    }
    Ok(0)
}

/// Where a long value (the CPU's flags: hundreds of words) wraps.
const WRAP_COLUMNS: usize = 80;

/// `key: value` lines, the keys right-aligned. A value longer than the line wraps at its
/// spaces, the continuation under its first word.
fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let indent = width + 2;
    pairs.iter().fold(String::new(), |mut out, (k, v)| {
        let mut line = format!("{k:>width$}: ");
        let mut column = indent;
        for (i, word) in v.split(' ').enumerate() {
            let len = word.chars().count();
            if i > 0 && column + 1 + len > WRAP_COLUMNS && column > indent {
                out.push_str(line.trim_end());
                out.push('\n');
                line = " ".repeat(indent);
                column = indent;
            } else if i > 0 {
                line.push(' ');
                column += 1;
            }
            line.push_str(word);
            column += len;
        }
        out.push_str(&line);
        out.push('\n');
        out
    })
}

fn render_inventory(inv: &Inventory) -> String {
    let sections = [
        ("System", render_os(&inv.os)),
        ("CPU", render_cpu(&inv.cpu)),
        ("Memory", render_memory(&inv.memory)),
        ("Storage", render_storage(&inv.storage)),
        ("Network", render_network(&inv.network)),
        ("Devices", render_devices(&inv.devices)),
        ("Thermal", render_thermal(&inv.thermal)),
        ("Power", render_power(&inv.power)),
        ("Pressure", render_pressure(&inv.pressure)),
    ];
    sections
        .iter()
        .map(|(title, body)| format!("── {title}\n{body}\n"))
        .collect()
}

fn render_os(os: &OsInfo) -> String {
    fields(&[
        ("hostname", or_dash(&os.hostname)),
        (
            "os",
            format!("{} ({} {})", or_dash(&os.os_name), os.os_id, os.os_version).replace(" )", ")"),
        ),
        ("kernel", or_dash(&os.kernel_release)),
        ("architecture", or_dash(&os.architecture)),
        ("uptime", format_duration(os.uptime_seconds)),
    ])
}

fn format_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86400, secs % 86400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {}s", secs % 60)
    }
}

fn render_cpu(cpu: &Cpu) -> String {
    let (l1, l5, l15) = cpu.load_average;
    fields(&[
        ("model", or_dash(&cpu.model)),
        ("vendor", or_dash(&cpu.vendor)),
        ("logical CPUs", cpu.logical_cpus.to_string()),
        (
            "physical cores",
            if cpu.physical_cores == 0 {
                "-".into()
            } else {
                cpu.physical_cores.to_string()
            },
        ),
        (
            "frequency",
            if cpu.frequency_mhz == 0 {
                "-".into()
            } else {
                format!("{} MHz", cpu.frequency_mhz)
            },
        ),
        ("load average", format!("{l1:.2} {l5:.2} {l15:.2}")),
        (
            "flags",
            if cpu.flags.is_empty() {
                "-".into()
            } else {
                cpu.flags.join(" ")
            },
        ),
    ])
}

fn render_memory(m: &Memory) -> String {
    fields(&[
        ("total", bytes(m.total_bytes)),
        ("used", bytes(m.used_bytes)),
        ("available", bytes(m.available_bytes)),
        ("free", bytes(m.free_bytes)),
        (
            "swap",
            format!(
                "{} of {} used",
                bytes(m.swap_used_bytes),
                bytes(m.swap_total_bytes)
            ),
        ),
    ])
}

fn render_storage(s: &Storage) -> String {
    let fs_rows: Vec<Vec<String>> = s
        .filesystems
        .iter()
        .map(|f| {
            vec![
                f.mount_point.clone(),
                f.fs_type.clone(),
                bytes(f.total_bytes),
                bytes(f.available_bytes),
                if f.read_only { "ro" } else { "rw" }.into(),
                f.device.clone(),
            ]
        })
        .collect();
    let dev_rows: Vec<Vec<String>> = s
        .block_devices
        .iter()
        .map(|b| {
            vec![
                b.name.clone(),
                b.kind.clone(),
                bytes(b.size_bytes),
                if b.rotational { "hdd" } else { "ssd" }.into(),
                if b.removable { "yes" } else { "no" }.into(),
                or_dash(&b.model),
            ]
        })
        .collect();
    format!(
        "{}\n{}",
        table::render(
            &["MOUNT", "TYPE", "SIZE", "AVAIL", "MODE", "DEVICE"],
            &fs_rows
        ),
        table::render(
            &["BLOCK", "KIND", "SIZE", "MEDIA", "REMOVABLE", "MODEL"],
            &dev_rows
        )
    )
}

fn render_network(ifaces: &[NetInterface]) -> String {
    let rows: Vec<Vec<String>> = ifaces
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.kind.clone(),
                i.operstate.clone(),
                if i.speed_mbps == 0 {
                    "-".into()
                } else {
                    format!("{} Mb/s", i.speed_mbps)
                },
                or_dash(&i.mac),
                if i.addresses.is_empty() {
                    "-".into()
                } else {
                    i.addresses.join(" ")
                },
            ]
        })
        .collect();
    table::render(
        &["LINK", "KIND", "STATE", "SPEED", "MAC", "ADDRESSES"],
        &rows,
    )
}

fn render_devices(d: &Devices) -> String {
    let pci: Vec<Vec<String>> = d
        .pci
        .iter()
        .map(|p| {
            let name = if p.device_name.is_empty() {
                format!("{:04x}:{:04x}", p.vendor_id, p.device_id)
            } else {
                format!("{} {}", p.vendor_name, p.device_name)
            };
            vec![
                p.slot.clone(),
                or_dash(&p.class_name),
                name,
                or_dash(&p.driver),
            ]
        })
        .collect();
    let usb: Vec<Vec<String>> = d
        .usb
        .iter()
        .map(|u| {
            vec![
                u.sysname.clone(),
                format!("{:04x}:{:04x}", u.vendor_id, u.product_id),
                format!("{} {}", u.manufacturer, u.product)
                    .trim()
                    .to_string(),
                format!("{} Mb/s", u.speed_mbps),
            ]
        })
        .collect();
    format!(
        "{}\n{}",
        table::render(&["PCI SLOT", "CLASS", "DEVICE", "DRIVER"], &pci),
        table::render(&["USB", "ID", "PRODUCT", "SPEED"], &usb)
    )
}

fn render_thermal(zones: &[ThermalZone]) -> String {
    let rows: Vec<Vec<String>> = zones
        .iter()
        .map(|z| {
            vec![
                z.name.clone(),
                z.kind.clone(),
                format!("{:.1} °C", z.temperature_celsius),
            ]
        })
        .collect();
    table::render(&["ZONE", "TYPE", "TEMPERATURE"], &rows)
}

fn render_power(supplies: &[PowerSupply]) -> String {
    let rows: Vec<Vec<String>> = supplies
        .iter()
        .map(|p| {
            let state = if p.kind == "Battery" {
                format!("{} {}%", or_dash(&p.status), p.capacity_percent)
            } else if p.online {
                "online".into()
            } else {
                "offline".into()
            };
            vec![p.name.clone(), p.kind.clone(), state]
        })
        .collect();
    table::render(&["SUPPLY", "TYPE", "STATE"], &rows)
}

fn render_pressure(p: &Pressure) -> String {
    if !p.available {
        return "pressure stall information is not available (kernel without CONFIG_PSI, or psi=0)\n".into();
    }
    let rows: Vec<Vec<String>> = [("cpu", &p.cpu), ("memory", &p.memory), ("io", &p.io)]
        .iter()
        .flat_map(|(name, r)| {
            [("some", &r.some), ("full", &r.full)].map(|(kind, a)| {
                vec![
                    format!("{name} {kind}"),
                    format!("{:.2}%", a.avg10),
                    format!("{:.2}%", a.avg60),
                    format!("{:.2}%", a.avg300),
                ]
            })
        })
        .collect();
    table::render(&["RESOURCE", "AVG10", "AVG60", "AVG300"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_wraps_under_its_first_word() {
        let flags: Vec<String> = (0..60).map(|i| format!("flag{i}")).collect();
        let text = fields(&[
            ("vendor", "AuthenticAMD".into()),
            ("flags", flags.join(" ")),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "vendor: AuthenticAMD");
        assert!(lines[1].starts_with(" flags: flag0 flag1 "), "{}", lines[1]);
        assert!(lines.len() > 3, "{text}");
        for line in &lines[2..] {
            assert!(line.starts_with("        flag"), "{line:?}");
        }
        assert!(
            lines.iter().all(|l| l.chars().count() <= WRAP_COLUMNS),
            "{text}"
        );
        // Every word once, in order.
        let words: Vec<&str> = text
            .split_whitespace()
            .filter(|w| w.starts_with("flag") && !w.ends_with(':'))
            .collect();
        assert_eq!(words, flags.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
