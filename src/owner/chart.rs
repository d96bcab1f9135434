//! The statistics as a picture (/stats in Telegram, `articlebot stats --png FILE`): questions
//! per day as stacked bars (answered, did-you-mean, unknown, small talk), the share of each,
//! and 👍 against 👎. Drawn into a palette bitmap and written as PNG here, with no dependency:
//! a chart library would bring a font stack (FreeType/fontconfig at build time, or a TrueType
//! rasteriser and a bundled font) for a few labels. The labels are numbers, dates and a handful
//! of upper-case words, drawn with the 3×5 pixel font below (made for this file); the caption
//! carries the full text.

use articlebot_engine::{date_of, DayCounts};

use super::protocol::StatsView;

pub const WIDTH: usize = 800;
pub const HEIGHT: usize = 480;

/// The palette: index → RGB.
const PALETTE: [[u8; 3]; 9] = [
    [255, 255, 255], // background
    [40, 40, 48],    // text, axes
    [222, 222, 228], // grid
    [46, 160, 67],   // answered
    [240, 170, 30],  // did-you-mean
    [214, 60, 50],   // unknown
    [120, 140, 170], // small talk
    [46, 160, 67],   // 👍
    [214, 60, 50],   // 👎
];
const BG: u8 = 0;
const INK: u8 = 1;
const GRID: u8 = 2;
/// The colours of answered, did-you-mean, unknown and small talk, bottom to top.
const KINDS: [u8; 4] = [3, 4, 5, 6];
const UP: u8 = 7;
const DOWN: u8 = 8;

/// Pixel size of one font dot.
const DOT: usize = 3;

/// A palette bitmap.
struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Canvas { px: vec![BG; WIDTH * HEIGHT] }
    }

    /// Fills a rectangle, clipped to the canvas.
    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, c: u8) {
        for row in y.min(HEIGHT)..(y + h).min(HEIGHT) {
            let start = row * WIDTH;
            self.px[start + x.min(WIDTH)..start + (x + w).min(WIDTH)].fill(c);
        }
    }

    /// Writes `s` (the font's characters; others as blanks) with its top left at (x, y).
    fn text(&mut self, x: usize, y: usize, s: &str, c: u8) {
        for (i, ch) in s.chars().enumerate() {
            let rows = glyph(ch);
            let gx = x + i * 4 * DOT;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        self.rect(gx + col * DOT, y + r * DOT, DOT, DOT, c);
                    }
                }
            }
        }
    }
}

/// Width in pixels of `s` in the font.
fn text_width(s: &str) -> usize {
    (s.chars().count() * 4).saturating_sub(1) * DOT
}

/// A character of the 3×5 font: five rows, three bits each (left bit first).
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b011, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '%' => [0b101, 0b001, 0b010, 0b100, 0b101],
        '/' => [0b001, 0b001, 0b010, 0b100, 0b100],
        'A' => [0b010, 0b101, 0b111, 0b101, 0b101],
        'D' => [0b110, 0b101, 0b101, 0b101, 0b110],
        'E' => [0b111, 0b100, 0b110, 0b100, 0b111],
        'G' => [0b011, 0b100, 0b101, 0b101, 0b011],
        'H' => [0b101, 0b101, 0b111, 0b101, 0b101],
        'I' => [0b111, 0b010, 0b010, 0b010, 0b111],
        'K' => [0b101, 0b101, 0b110, 0b101, 0b101],
        'L' => [0b100, 0b100, 0b100, 0b100, 0b111],
        'M' => [0b101, 0b111, 0b111, 0b101, 0b101],
        'N' => [0b110, 0b101, 0b101, 0b101, 0b101],
        'O' => [0b010, 0b101, 0b101, 0b101, 0b010],
        'P' => [0b110, 0b101, 0b110, 0b100, 0b100],
        'Q' => [0b010, 0b101, 0b101, 0b110, 0b011],
        'R' => [0b110, 0b101, 0b110, 0b101, 0b101],
        'S' => [0b011, 0b100, 0b010, 0b001, 0b110],
        'T' => [0b111, 0b010, 0b010, 0b010, 0b010],
        'U' => [0b101, 0b101, 0b101, 0b101, 0b111],
        'V' => [0b101, 0b101, 0b101, 0b101, 0b010],
        'W' => [0b101, 0b101, 0b111, 0b111, 0b101],
        'Y' => [0b101, 0b101, 0b010, 0b010, 0b010],
        _ => [0; 5],
    }
}

fn kinds(d: &DayCounts) -> [u64; 4] {
    [d.answered, d.suggested, d.unknown, d.smalltalk]
}

/// The chart of `v` as a PNG file's bytes.
pub fn png(v: &StatsView) -> Vec<u8> {
    let mut c = Canvas::new();
    let s = &v.stats;

    // Questions per day: stacked bars over a zero line, the highest day's count at the top.
    let (left, top, plot_w, plot_h) = (70, 44, 700, 200);
    c.text(left, 14, "QUESTIONS PER DAY", INK);
    let days = &s.days;
    let highest = days.iter().map(|d| kinds(d).iter().sum::<u64>()).max().unwrap_or(0).max(1);
    for frac in [1, 2] {
        c.rect(left, top + plot_h - plot_h * frac / 2, plot_w, 1, GRID);
    }
    let label = highest.to_string();
    c.text(left.saturating_sub(text_width(&label) + 8), top - 7, &label, INK);
    c.text(left - text_width("0") - 8, top + plot_h - 7, "0", INK);
    if !days.is_empty() {
        let slot = plot_w / days.len();
        let bar = (slot * 3 / 4).max(1);
        for (i, d) in days.iter().enumerate() {
            let x = left + i * slot + (slot - bar) / 2;
            let mut y = top + plot_h;
            for (n, colour) in kinds(d).iter().zip(KINDS) {
                let h = (*n as usize * plot_h).div_ceil(highest as usize).min(y - top);
                y -= h;
                c.rect(x, y, bar, h, colour);
            }
            // Today's date and every seventh day's before it; the first day's too, unless
            // it would run into the next label.
            let from_end = days.len() - 1 - i;
            if from_end.is_multiple_of(7) || (i == 0 && from_end % 7 >= 3) {
                let date = date_of(d.day * 86_400);
                let md = &date[5..];
                let lx = (x + bar / 2).saturating_sub(text_width(md) / 2).min(WIDTH - text_width(md));
                c.text(lx, top + plot_h + 10, md, INK);
            }
        }
    }
    c.rect(left, top + plot_h, plot_w, 2, INK);

    // The legend, then the share of each kind in all questions so far.
    let mut x = left;
    for (name, colour) in ["ANSWERED", "DID-YOU-MEAN", "UNKNOWN", "SMALL TALK"].iter().zip(KINDS) {
        c.rect(x, 290, 15, 15, colour);
        c.text(x + 22, 290, name, INK);
        x += 22 + text_width(name) + 30;
    }
    let totals = [s.answered_total, s.suggested_total, s.unknown_total, s.smalltalk_total];
    share_bar(&mut c, left, 318, plot_w, &totals, &KINDS, |n, all| format!("{}%", n * 100 / all));

    // 👍 against 👎, summed over the articles listed.
    let up: u64 = s.feedback.iter().map(|f| f.1).sum();
    let down: u64 = s.feedback.iter().map(|f| f.2).sum();
    c.text(left, 384, &format!("UP {up}"), UP);
    let down_label = format!("DOWN {down}");
    c.text(left + plot_w - text_width(&down_label), 384, &down_label, DOWN);
    share_bar(&mut c, left, 408, plot_w, &[up, down], &[UP, DOWN], |n, _| n.to_string());
    encode(&c.px)
}

/// A bar `w` wide split in proportion to `parts`, each labelled if its label fits; a grey bar
/// when all are zero.
fn share_bar(
    c: &mut Canvas,
    x: usize,
    y: usize,
    w: usize,
    parts: &[u64],
    colours: &[u8],
    label: impl Fn(u64, u64) -> String,
) {
    let h = 40;
    let all: u64 = parts.iter().sum();
    if all == 0 {
        c.rect(x, y, w, h, GRID);
        c.text(x + w / 2 - text_width("NONE YET") / 2, y + h / 2 - 7, "NONE YET", INK);
        return;
    }
    let mut at = x;
    let mut done = 0u64;
    for (n, colour) in parts.iter().zip(colours) {
        // Ends from the running sum, so the segments fill the bar exactly.
        done += n;
        let end = x + (done as usize * w) / all as usize;
        c.rect(at, y, end - at, h, *colour);
        let text = label(*n, all);
        if *n > 0 && text_width(&text) + 8 < end - at {
            c.text(at + (end - at - text_width(&text)) / 2, y + h / 2 - 7, &text, BG);
        }
        at = end;
    }
}

/// PNG: 8-bit palette, no filtering, deflated with runs of equal bytes (a chart is mostly
/// flat colour: ~10 KB instead of ~400 KB stored).
fn encode(px: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity((WIDTH + 1) * HEIGHT);
    for row in px.chunks(WIDTH) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(WIDTH as u32).to_be_bytes());
    ihdr.extend_from_slice(&(HEIGHT as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"PLTE", &PALETTE.concat());
    chunk(&mut out, b"IDAT", &zlib(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// CRC-32 (IEEE), bit by bit: a few hundred kilobytes per chart.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Bits out, least significant first (deflate's order).
struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= value << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code: written most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        let reversed = code.reverse_bits() >> (32 - len);
        self.put(reversed, len);
    }

    /// A literal byte or the end-of-block symbol (256) in the fixed code.
    fn literal(&mut self, sym: u32) {
        match sym {
            0..=143 => self.code(0x30 + sym, 8),
            144..=255 => self.code(0x190 + sym - 144, 9),
            256..=279 => self.code(sym - 256, 7),
            _ => self.code(0xC0 + sym - 280, 8),
        }
    }

    /// A copy of `len` (3..=258) bytes from one byte back.
    fn run(&mut self, len: usize) {
        const BASE: [usize; 29] = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
            227, 258,
        ];
        const EXTRA: [u32; 29] =
            [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
        let i = BASE.iter().rposition(|&b| b <= len).unwrap_or(0);
        self.literal(257 + i as u32);
        self.put((len - BASE[i]) as u32, EXTRA[i]);
        // Distance 1: code 0 of the fixed 5-bit distance code, no extra bits.
        self.code(0, 5);
    }
}

/// zlib stream of `data`: one fixed-Huffman deflate block of literals and runs.
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut bits = Bits { out: vec![0x78, 0x01], acc: 0, n: 0 };
    bits.put(1, 1); // the last block
    bits.put(1, 2); // fixed Huffman codes
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        bits.literal(u32::from(b));
        i += 1;
        let mut same = 0;
        while i + same < data.len() && data[i + same] == b && same < 258 {
            same += 1;
        }
        if same >= 3 {
            bits.run(same);
            i += same;
        }
    }
    bits.literal(256);
    if bits.n > 0 {
        bits.put(0, 8 - bits.n);
    }
    let mut out = bits.out;
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use articlebot_engine::Stats;

    #[test]
    fn crc_of_a_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_chart_of_nothing_and_of_something_is_a_png() {
        for days in [
            vec![],
            (0..30)
                .map(|d| DayCounts { day: 20_000 + d, answered: d, suggested: 1, unknown: 2, smalltalk: 0 })
                .collect(),
        ] {
            let stats = Stats {
                answered_total: 9,
                suggested_total: 3,
                feedback: vec![("a".into(), 5, 1)],
                days,
                ..Stats::default()
            };
            let png = png(&StatsView { stats, titles: Default::default() });
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            assert_eq!(&png[12..16], b"IHDR");
            assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), WIDTH as u32);
            assert!(png.len() < 60_000, "runs compress a chart: {} bytes", png.len());
            assert!(png.ends_with(b"IEND\xaeB`\x82"));
        }
    }
}
