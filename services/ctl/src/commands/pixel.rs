//! `qos-ctl pixel …`: displays, brightness, ambient light and the display power policy.

use clap::Subcommand;
use steppps::api::PIXEL;
use steppps::api::pixel::{Ambient, Backlight, Output, Pixel1Proxy, Policy};

use super::print_json;
use crate::client::{Client, Failure};
use crate::table;

/// `qos-ctl pixel` alone lists the outputs.
#[derive(Debug, Clone, Default, Subcommand)]
pub enum PixelCommand {
    /// List display outputs: status, model, size, DPI and the recommended scale
    #[default]
    Outputs,
    /// Show backlight brightness, or set it in percent (setting needs root or polkit)
    Brightness {
        /// Backlight device (`intel_backlight`) [default: the preferred one]; a number alone
        /// is the PERCENT for the preferred one (`qos-ctl pixel brightness 40`)
        device: Option<String>,
        /// New brightness, 0 to 100
        percent: Option<u32>,
    },
    /// Show the ambient light sensor and the brightness the adaptive curve gives
    Ambient,
    /// Show the display power policy, or change parts of it (needs root or polkit)
    Policy {
        /// Follow the ambient light sensor
        #[arg(long)]
        adaptive: Option<bool>,
        /// Adaptive range, lowest brightness (percent)
        #[arg(long)]
        min: Option<u32>,
        /// Adaptive range, highest brightness (percent)
        #[arg(long)]
        max: Option<u32>,
        /// Dim after this many idle seconds (0: never)
        #[arg(long)]
        dim_after: Option<u32>,
        /// Brightness when dimmed (percent)
        #[arg(long)]
        dim_to: Option<u32>,
        /// Turn the display off after this many idle seconds (0: never)
        #[arg(long)]
        blank_after: Option<u32>,
    },
}

/// `brightness 40` means 40 % on the preferred backlight: no backlight is named by a number
/// (they are `intel_backlight`, `acpi_video0`, `amdgpu_bl1`…).
fn device_and_percent(device: Option<&str>, percent: Option<u32>) -> (&str, Option<u32>) {
    match (device, percent) {
        (Some(d), None) => match d.trim_end_matches('%').parse::<u32>() {
            Ok(p) => ("", Some(p)),
            Err(_) => (d, None),
        },
        (d, p) => (d.unwrap_or(""), p),
    }
}

fn size(o: &Output) -> String {
    if o.width_mm == 0 {
        return "-".into();
    }
    let inches = (f64::from(o.width_mm).powi(2) + f64::from(o.height_mm).powi(2)).sqrt() / 25.4;
    format!("{}x{} mm ({inches:.1}\")", o.width_mm, o.height_mm)
}

fn render_outputs(outputs: &[Output]) -> String {
    let rows: Vec<Vec<String>> = outputs
        .iter()
        .map(|o| {
            let display = match (o.manufacturer.is_empty(), o.model.is_empty()) {
                (true, _) if !o.edid_error.is_empty() => format!("(EDID: {})", o.edid_error),
                (true, _) => "-".into(),
                (false, true) => format!("{} {:04x}", o.manufacturer, o.product_code),
                (false, false) => format!("{} {}", o.manufacturer, o.model),
            };
            let mode = if o.width_px == 0 {
                o.modes.first().cloned().unwrap_or_else(|| "-".into())
            } else {
                format!("{}x{}@{:.0}", o.width_px, o.height_px, o.refresh_hz)
            };
            vec![
                o.name.clone(),
                o.status.clone(),
                display,
                mode,
                size(o),
                if o.dpi > 0.0 {
                    format!("{:.0}", o.dpi)
                } else {
                    "-".into()
                },
                format!("{}", o.scale),
            ]
        })
        .collect();
    table::render(
        &[
            "OUTPUT", "STATUS", "DISPLAY", "MODE", "SIZE", "DPI", "SCALE",
        ],
        &rows,
    )
}

fn render_backlights(backlights: &[Backlight]) -> String {
    let rows: Vec<Vec<String>> = backlights
        .iter()
        .map(|b| {
            vec![
                b.name.clone(),
                b.kind.clone(),
                format!("{}%", b.percent),
                format!("{}/{}", b.brightness, b.max_brightness),
            ]
        })
        .collect();
    table::render(&["BACKLIGHT", "TYPE", "BRIGHTNESS", "RAW"], &rows)
}

fn render_ambient(a: &Ambient) -> String {
    if !a.present {
        return "ambient light sensor: none\n".into();
    }
    format!(
        "ambient light sensor {}: {:.0} lux → adaptive brightness {}%\n",
        a.device, a.lux, a.recommended_percent
    )
}

fn render_policy(p: &Policy) -> String {
    let never = |s: u32| {
        if s == 0 {
            "never".to_string()
        } else {
            format!("after {s} s idle")
        }
    };
    format!(
        "adaptive brightness: {} ({}–{}%)\ndim to {}%: {}\nblank: {}\n",
        if p.adaptive { "on" } else { "off" },
        p.min_percent,
        p.max_percent,
        p.dim_percent,
        never(p.idle_dim_seconds),
        never(p.blank_seconds)
    )
}

pub async fn run(client: &Client, command: &PixelCommand, json: bool) -> Result<u8, Failure> {
    let pixel = client
        .call(&PIXEL, Pixel1Proxy::new(&client.connection))
        .await?;
    match command {
        PixelCommand::Outputs => {
            let outputs = client.call(&PIXEL, pixel.list_outputs()).await?;
            if json {
                print_json(&outputs)?
            } else {
                print!("{}", render_outputs(&outputs))
            }
        }
        PixelCommand::Brightness { device, percent } => {
            let (device, percent) = device_and_percent(device.as_deref(), *percent);
            let shown: Vec<Backlight> = match percent {
                Some(p) => vec![client.call(&PIXEL, pixel.set_brightness(device, p)).await?],
                None if device.is_empty() => client.call(&PIXEL, pixel.list_backlights()).await?,
                None => vec![client.call(&PIXEL, pixel.get_brightness(device)).await?],
            };
            if json {
                print_json(&shown)?
            } else if shown.is_empty() {
                println!("backlight: none (no display backlight on this machine)")
            } else {
                print!("{}", render_backlights(&shown))
            }
        }
        PixelCommand::Ambient => {
            let a = client.call(&PIXEL, pixel.get_ambient()).await?;
            if json {
                print_json(&a)?
            } else {
                print!("{}", render_ambient(&a))
            }
        }
        PixelCommand::Policy {
            adaptive,
            min,
            max,
            dim_after,
            dim_to,
            blank_after,
        } => {
            let mut policy = client.call(&PIXEL, pixel.get_policy()).await?;
            let changes = [
                adaptive.is_some(),
                min.is_some(),
                max.is_some(),
                dim_after.is_some(),
                dim_to.is_some(),
                blank_after.is_some(),
            ];
            if changes.iter().any(|&c| c) {
                policy.adaptive = adaptive.unwrap_or(policy.adaptive);
                policy.min_percent = min.unwrap_or(policy.min_percent);
                policy.max_percent = max.unwrap_or(policy.max_percent);
                policy.idle_dim_seconds = dim_after.unwrap_or(policy.idle_dim_seconds);
                policy.dim_percent = dim_to.unwrap_or(policy.dim_percent);
                policy.blank_seconds = blank_after.unwrap_or(policy.blank_seconds);
                policy = client.call(&PIXEL, pixel.set_policy(&policy)).await?;
            }
            if json {
                print_json(&policy)?
            } else {
                print!("{}", render_policy(&policy))
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_alone_is_a_percentage_for_the_preferred_backlight() {
        assert_eq!(device_and_percent(Some("40"), None), ("", Some(40)));
        assert_eq!(device_and_percent(Some("40%"), None), ("", Some(40)));
        assert_eq!(
            device_and_percent(Some("intel_backlight"), None),
            ("intel_backlight", None)
        );
        assert_eq!(
            device_and_percent(Some("acpi_video0"), Some(10)),
            ("acpi_video0", Some(10))
        );
        assert_eq!(device_and_percent(None, None), ("", None));
    }
}
