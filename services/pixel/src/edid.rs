//! A reader of the 128-byte EDID base block (VESA E-EDID 1.4; 1.3 reads the same): who made
//! the display, what it is called, how big it is, and its preferred mode. Extension blocks
//! (CEA-861 and others) are not needed for that and are ignored.

/// What the base block says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edid {
    /// PNP id, three letters: `DEL`, `BOE`.
    pub manufacturer: String,
    pub product_code: u16,
    pub serial: u32,
    /// The serial number display descriptor (tag 0xFF).
    pub serial_text: String,
    /// The display product name descriptor (tag 0xFC).
    pub model: String,
    /// Year of manufacture, or the model year when the week byte is 0xFF; 0 when unknown.
    pub year: u32,
    pub version: (u8, u8),
    /// Physical size in millimetres: from the first detailed timing when it gives one, else
    /// the base block's centimetres. 0 when unknown.
    pub width_mm: u32,
    pub height_mm: u32,
    /// The preferred mode: the first detailed timing descriptor.
    pub preferred: Option<Timing>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub width: u32,
    pub height: u32,
    pub refresh_hz: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdidError {
    #[error("EDID is {0} bytes long; the base block is 128")]
    TooShort(usize),
    #[error("EDID does not start with the 00 FF FF FF FF FF FF 00 header")]
    BadHeader,
    #[error("EDID base block checksum is wrong (bytes sum to {0:#04x} mod 256, not 0)")]
    BadChecksum(u8),
}

const HEADER: [u8; 8] = [0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00];

fn byte(block: &[u8], i: usize) -> u32 {
    u32::from(block.get(i).copied().unwrap_or(0))
}

/// Text of a display descriptor: up to 13 bytes, ended by 0x0A, padded with spaces.
fn descriptor_text(d: &[u8]) -> String {
    let text = d.get(5..18).unwrap_or(&[]);
    let end = text.iter().position(|&b| b == 0x0A).unwrap_or(text.len());
    text[..end]
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
}

fn detailed_timing(d: &[u8]) -> (Option<Timing>, u32, u32) {
    let clock_hz = (byte(d, 0) | byte(d, 1) << 8) as f64 * 10_000.0;
    let h_active = byte(d, 2) | (byte(d, 4) & 0xF0) << 4;
    let h_blank = byte(d, 3) | (byte(d, 4) & 0x0F) << 8;
    let v_active = byte(d, 5) | (byte(d, 7) & 0xF0) << 4;
    let v_blank = byte(d, 6) | (byte(d, 7) & 0x0F) << 8;
    let width_mm = byte(d, 12) | (byte(d, 14) & 0xF0) << 4;
    let height_mm = byte(d, 13) | (byte(d, 14) & 0x0F) << 8;
    let total = f64::from(h_active + h_blank) * f64::from(v_active + v_blank);
    let timing = (h_active > 0 && v_active > 0).then(|| Timing {
        width: h_active,
        height: v_active,
        refresh_hz: if total > 0.0 { clock_hz / total } else { 0.0 },
    });
    (timing, width_mm, height_mm)
}

/// Parses an EDID (the contents of a connector's `edid` file). An empty file means no
/// display (or no EDID): `Ok(None)`.
pub fn parse(bytes: &[u8]) -> Result<Option<Edid>, EdidError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let block = bytes.get(..128).ok_or(EdidError::TooShort(bytes.len()))?;
    if block[..8] != HEADER {
        return Err(EdidError::BadHeader);
    }
    let sum = block.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    if sum != 0 {
        return Err(EdidError::BadChecksum(sum));
    }
    let id = byte(block, 8) << 8 | byte(block, 9);
    let letter = |shift: u32| {
        let v = (id >> shift) & 0x1F;
        if (1..=26).contains(&v) {
            char::from(b'A' + (v as u8) - 1)
        } else {
            '?'
        }
    };
    let manufacturer: String = [letter(10), letter(5), letter(0)].iter().collect();
    let product_code = (byte(block, 10) | byte(block, 11) << 8) as u16;
    let serial =
        byte(block, 12) | byte(block, 13) << 8 | byte(block, 14) << 16 | byte(block, 15) << 24;
    let year = match byte(block, 17) {
        0 => 0,
        y => 1990 + y,
    };
    let mut edid = Edid {
        manufacturer,
        product_code,
        serial,
        year,
        version: (block[18], block[19]),
        width_mm: byte(block, 21) * 10,
        height_mm: byte(block, 22) * 10,
        ..Edid::default()
    };
    // Both cm bytes are needed for a size; one alone encodes an aspect ratio (1.4).
    if edid.width_mm == 0 || edid.height_mm == 0 {
        edid.width_mm = 0;
        edid.height_mm = 0;
    }
    for d in block[54..126].chunks_exact(18) {
        if d[0] != 0 || d[1] != 0 {
            let (timing, w, h) = detailed_timing(d);
            if edid.preferred.is_none() {
                edid.preferred = timing;
                // The timing's size is in mm, finer than the base block's cm; use it when it
                // agrees roughly (some panels put garbage or an aspect ratio there).
                let agrees =
                    edid.width_mm == 0 || (f64::from(w) - f64::from(edid.width_mm)).abs() <= 15.0;
                if w > 0 && h > 0 && agrees {
                    edid.width_mm = w;
                    edid.height_mm = h;
                }
            }
            continue;
        }
        match d[3] {
            0xFC => edid.model = descriptor_text(d),
            0xFF => edid.serial_text = descriptor_text(d),
            _ => {}
        }
    }
    Ok(Some(edid))
}

/// Pixels per inch across the width; 0 when the size is unknown.
pub fn dpi(width_px: u32, width_mm: u32) -> f64 {
    if width_px == 0 || width_mm == 0 {
        return 0.0;
    }
    f64::from(width_px) / (f64::from(width_mm) / 25.4)
}

/// The scale factor that makes text the size it is on a reference display: 96 DPI for a
/// monitor at arm's length, 125 DPI for a built-in panel seen closer. Rounded to a quarter,
/// 1.0 to 3.0; 1.0 when the size is unknown.
pub fn recommended_scale(dpi: f64, internal: bool) -> f64 {
    if dpi <= 0.0 {
        return 1.0;
    }
    let reference = if internal { 125.0 } else { 96.0 };
    ((dpi / reference * 4.0).round() / 4.0).clamp(1.0, 3.0)
}

/// Builds a base block the way display makers do, with a correct checksum (tests and
/// fixtures; also documents the layout).
pub mod build {
    /// What to put in the block.
    #[derive(Debug, Clone)]
    pub struct Spec<'a> {
        pub manufacturer: &'a str,
        pub product_code: u16,
        pub serial: u32,
        pub week: u8,
        pub year: u32,
        pub width_cm: u8,
        pub height_cm: u8,
        /// Pixel clock in kHz, active and blanking pixels/lines, image size in mm.
        pub clock_khz: u32,
        pub h_active: u32,
        pub h_blank: u32,
        pub v_active: u32,
        pub v_blank: u32,
        pub width_mm: u32,
        pub height_mm: u32,
        pub model: &'a str,
        pub serial_text: &'a str,
    }

    fn text_descriptor(tag: u8, text: &str) -> [u8; 18] {
        let mut d = [0u8; 18];
        d[3] = tag;
        let mut body = [b' '; 13];
        let bytes = text.as_bytes();
        let n = bytes.len().min(13);
        body[..n].copy_from_slice(&bytes[..n]);
        if n < 13 {
            body[n] = 0x0A;
        }
        d[5..18].copy_from_slice(&body);
        d
    }

    pub fn base_block(s: &Spec<'_>) -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b[..8].copy_from_slice(&super::HEADER);
        let code = |c: u8| u16::from(c.saturating_sub(b'A') + 1) & 0x1F;
        let m = s.manufacturer.as_bytes();
        let id = code(m[0]) << 10 | code(m[1]) << 5 | code(m[2]);
        b[8..10].copy_from_slice(&id.to_be_bytes());
        b[10..12].copy_from_slice(&s.product_code.to_le_bytes());
        b[12..16].copy_from_slice(&s.serial.to_le_bytes());
        b[16] = s.week;
        b[17] = (s.year.saturating_sub(1990)) as u8;
        b[18] = 1;
        b[19] = 4;
        b[20] = 0xA5; // digital, 8 bits per colour, DisplayPort
        b[21] = s.width_cm;
        b[22] = s.height_cm;
        b[23] = 120; // gamma 2.2
        b[24] = 0x3A; // RGB 4:4:4, sRGB default, preferred timing native
        // Detailed timing descriptor 1: the preferred mode.
        let clock = (s.clock_khz / 10) as u16;
        let t = &mut b[54..72];
        t[0..2].copy_from_slice(&clock.to_le_bytes());
        t[2] = (s.h_active & 0xFF) as u8;
        t[3] = (s.h_blank & 0xFF) as u8;
        t[4] = (((s.h_active >> 8) & 0x0F) << 4 | ((s.h_blank >> 8) & 0x0F)) as u8;
        t[5] = (s.v_active & 0xFF) as u8;
        t[6] = (s.v_blank & 0xFF) as u8;
        t[7] = (((s.v_active >> 8) & 0x0F) << 4 | ((s.v_blank >> 8) & 0x0F)) as u8;
        t[8] = 48; // h sync offset
        t[9] = 32; // h sync width
        t[10] = 0x35; // v sync offset 3, width 5
        t[12] = (s.width_mm & 0xFF) as u8;
        t[13] = (s.height_mm & 0xFF) as u8;
        t[14] = (((s.width_mm >> 8) & 0x0F) << 4 | ((s.height_mm >> 8) & 0x0F)) as u8;
        t[17] = 0x1A; // digital separate sync
        b[72..90].copy_from_slice(&text_descriptor(0xFF, s.serial_text));
        b[90..108].copy_from_slice(&text_descriptor(0xFC, s.model));
        // Range limits descriptor (tag 0xFD): 56–76 Hz, 30–83 kHz, 170 MHz.
        let r = &mut b[108..126];
        r[3] = 0xFD;
        r[5] = 56;
        r[6] = 76;
        r[7] = 30;
        r[8] = 83;
        r[9] = 17;
        r[10] = 0x00;
        r[11] = 0x0A;
        for x in &mut r[12..18] {
            *x = b' ';
        }
        b[126] = 0; // no extension blocks
        let sum = b[..127].iter().fold(0u8, |s, &x| s.wrapping_add(x));
        b[127] = 0u8.wrapping_sub(sum);
        b
    }

    /// A Dell U2415 (24", 1920x1200 at 60 Hz, CVT reduced blanking).
    pub fn dell_u2415() -> Vec<u8> {
        base_block(&Spec {
            manufacturer: "DEL",
            product_code: 0xA0B5,
            serial: 0x3034_4C4C,
            week: 20,
            year: 2016,
            width_cm: 52,
            height_cm: 32,
            clock_khz: 154_000,
            h_active: 1920,
            h_blank: 160,
            v_active: 1200,
            v_blank: 35,
            width_mm: 518,
            height_mm: 324,
            model: "DELL U2415",
            serial_text: "7MT0167B0RFL",
        })
    }

    /// A 14" laptop panel (BOE, 2880x1800 at 60 Hz).
    pub fn boe_laptop_panel() -> Vec<u8> {
        base_block(&Spec {
            manufacturer: "BOE",
            product_code: 0x0A1C,
            serial: 0,
            week: 1,
            year: 2022,
            width_cm: 30,
            height_cm: 19,
            clock_khz: 347_600,
            h_active: 2880,
            h_blank: 160,
            v_active: 1800,
            v_blank: 105,
            width_mm: 302,
            height_mm: 189,
            model: "NE140QDM-NX1",
            serial_text: "",
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_monitor() {
        let e = parse(&build::dell_u2415()).unwrap().unwrap();
        assert_eq!(e.manufacturer, "DEL");
        assert_eq!(e.product_code, 0xA0B5);
        assert_eq!(e.serial, 0x3034_4C4C);
        assert_eq!(e.model, "DELL U2415");
        assert_eq!(e.serial_text, "7MT0167B0RFL");
        assert_eq!(e.year, 2016);
        assert_eq!(e.version, (1, 4));
        assert_eq!((e.width_mm, e.height_mm), (518, 324));
        let t = e.preferred.unwrap();
        assert_eq!((t.width, t.height), (1920, 1200));
        assert!((t.refresh_hz - 59.95).abs() < 0.01, "{}", t.refresh_hz);
        let dpi = dpi(t.width, e.width_mm);
        assert!((dpi - 94.1).abs() < 0.1, "{dpi}");
        assert_eq!(recommended_scale(dpi, false), 1.0);
    }

    #[test]
    fn a_dense_laptop_panel_gets_scaled() {
        let e = parse(&build::boe_laptop_panel()).unwrap().unwrap();
        assert_eq!(e.manufacturer, "BOE");
        assert_eq!(e.serial_text, "");
        let dpi = dpi(2880, e.width_mm);
        assert!((dpi - 242.2).abs() < 0.1, "{dpi}");
        assert_eq!(recommended_scale(dpi, true), 2.0);
        assert_eq!(recommended_scale(163.0, false), 1.75, "27-inch 4K");
        assert_eq!(recommended_scale(0.0, false), 1.0);
    }

    #[test]
    fn damaged_edids_are_refused() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[0u8; 40]), Err(EdidError::TooShort(40)));
        let mut bad = build::dell_u2415();
        bad[0] = 1;
        assert_eq!(parse(&bad), Err(EdidError::BadHeader));
        let mut bad = build::dell_u2415();
        bad[20] ^= 0x01;
        assert!(matches!(parse(&bad), Err(EdidError::BadChecksum(_))));
    }

    #[test]
    fn extension_blocks_are_ignored() {
        let mut with_ext = build::dell_u2415();
        with_ext.extend_from_slice(&[0x02; 128]);
        assert_eq!(parse(&with_ext).unwrap().unwrap().model, "DELL U2415");
    }
}
