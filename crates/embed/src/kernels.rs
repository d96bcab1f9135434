//! The encoder's matrix products. A linear layer's weights are packed once, at load, into panels
//! of [`PANEL`] output columns, so a product streams each panel once per block of rows and
//! never repacks: a general GEMM library repacks its operands on every call, which for a
//! question of a dozen tokens was most of its time (56 % of a question's encoding in the
//! profile of candle 0.11).
//!
//! Weights are kept in bfloat16 and widened to f32 in registers (a shift or a mask), inputs and
//! sums stay f32. A question's encoding streams every weight once, so its time is bounded by
//! the bytes read: half of f32's (21 MB instead of 42 for all-MiniLM-L6-v2), and the vectors
//! move by less than 1e-4 in cosine (the reference test bounds it). The weights of an input
//! pair are interleaved per column (`[w(c, 2j), w(c, 2j+1)]`), so one load gives a register of
//! even and one of odd inputs' weights. AVX-512 BF16's `vdpbf16ps` would take that layout as
//! it is, but measured no faster here than widening (it also rounds the inputs).
//!
//! Tiles per CPU, chosen at run time: AVX-512F (6 rows × 32 columns), AVX2 + FMA (3 × 32), else
//! portable code the compiler vectorises as it can.

/// Output columns per panel: two AVX-512 or four AVX2 registers.
pub(crate) const PANEL: usize = 32;
/// Rows of the input taken per pass over the panels: they stay in the L2 cache while every
/// panel streams past them (at 1,536 inputs, 64 rows are 384 KiB).
const ROW_BLOCK: usize = 64;

/// `y = x·Wᵀ + b` for `W` of `n` rows (outputs) by `k` columns (inputs), as PyTorch stores a
/// linear layer.
pub(crate) struct Linear {
    k: usize,
    n: usize,
    /// `ceil(n / PANEL)` panels of `pairs` rows, each row `PANEL` columns × 2 inputs (an input
    /// pair per column); the last panel padded with zero columns, an odd `k` with a zero input.
    panels: Vec<u16>,
    /// `ceil(k / 2)`.
    pairs: usize,
    bias: Vec<f32>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Isa {
    Avx512,
    Avx2,
    Portable,
}

fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        use std::sync::OnceLock;
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            if has!("avx512f") {
                Isa::Avx512
            } else if has!("avx2") && has!("fma") {
                Isa::Avx2
            } else {
                Isa::Portable
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    Isa::Portable
}

/// The nearest bfloat16 (ties to even); NaN stays NaN.
fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

#[inline(always)]
fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

impl Linear {
    /// From row-major weights (`n` × `k`) and a bias of `n` (zeros when the layer has none).
    pub fn new(weights: &[f32], bias: Vec<f32>, n: usize, k: usize) -> Linear {
        assert_eq!(weights.len(), n * k, "weights are n × k");
        assert_eq!(bias.len(), n, "one bias per output");
        let pairs = k.div_ceil(2);
        let count = n.div_ceil(PANEL);
        let mut panels = vec![0u16; count * pairs * PANEL * 2];
        for (p, panel) in panels.chunks_exact_mut(pairs * PANEL * 2).enumerate() {
            for col in 0..PANEL.min(n - p * PANEL) {
                let row = &weights[(p * PANEL + col) * k..][..k];
                for (kk, &w) in row.iter().enumerate() {
                    panel[(kk / 2) * PANEL * 2 + col * 2 + kk % 2] = to_bf16(w);
                }
            }
        }
        Linear { k, n, panels, pairs, bias }
    }

    pub fn outputs(&self) -> usize {
        self.n
    }

    /// `out` (`m` × `n`) = `x` (`m` × `k`) · Wᵀ + b.
    pub fn apply(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.apply_with(isa(), x, m, out);
    }

    /// [`Linear::apply`] with the given kernels, which the CPU must have.
    fn apply_with(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        assert!(x.len() >= m * self.k && out.len() >= m * self.n, "operands fit");
        // Kernels read input pairs, so an odd row gets a zero input to pair its last (no
        // model has one).
        let padded: Vec<f32> = if self.k % 2 == 1 {
            x[..m * self.k].chunks_exact(self.k).flat_map(|row| row.iter().copied().chain([0.0])).collect()
        } else {
            Vec::new()
        };
        let (x, stride) = if padded.is_empty() { (x, self.k) } else { (&padded[..], self.k + 1) };
        let panel_len = self.pairs * PANEL * 2;
        for r0 in (0..m).step_by(ROW_BLOCK) {
            let rows = ROW_BLOCK.min(m - r0);
            for (p, panel) in self.panels.chunks_exact(panel_len).enumerate() {
                let c0 = p * PANEL;
                let cols = PANEL.min(self.n - c0);
                let tile = Tile {
                    x: &x[r0 * stride..],
                    stride,
                    pairs: self.pairs,
                    panel,
                    bias: &self.bias[c0..c0 + cols],
                    n: self.n,
                };
                let out = &mut out[r0 * self.n + c0..];
                match isa {
                    // SAFETY: `isa` is one the CPU has (see `isa()`); `tile` and `out` hold `rows` rows.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { x86::rows_avx512(&tile, rows, out) },
                    // SAFETY: as above.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => unsafe { x86::rows_avx2(&tile, rows, out) },
                    _ => portable_rows(&tile, rows, out),
                }
            }
        }
    }
}

/// One panel against a block of rows: what each kernel needs.
struct Tile<'a> {
    /// The block's first row onwards, rows of `stride` = `2 × pairs`.
    x: &'a [f32],
    stride: usize,
    pairs: usize,
    panel: &'a [u16],
    /// The panel's real columns' biases (fewer than [`PANEL`] at the right edge).
    bias: &'a [f32],
    /// Row stride of the output.
    n: usize,
}

impl Tile<'_> {
    /// Inputs `2j` and `2j + 1` of row `r`.
    #[inline(always)]
    fn pair(&self, r: usize, j: usize) -> (f32, f32) {
        let at = r * self.stride + 2 * j;
        (self.x[at], self.x[at + 1])
    }
}

fn portable_rows(t: &Tile, rows: usize, out: &mut [f32]) {
    let cols = t.bias.len();
    for r in 0..rows {
        let mut acc = [0.0f32; PANEL];
        for (j, w) in t.panel.chunks_exact(PANEL * 2).enumerate() {
            let (even, odd) = t.pair(r, j);
            for (a, w) in acc.iter_mut().zip(w.chunks_exact(2)) {
                *a += even * from_bf16(w[0]) + odd * from_bf16(w[1]);
            }
        }
        for ((o, a), b) in out[r * t.n..][..cols].iter_mut().zip(acc).zip(t.bias) {
            *o = a + b;
        }
    }
}

/// `x·y` of two equal-length slices, in lanes the compiler can keep in vector registers.
pub(crate) fn dot(x: &[f32], y: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let tail: f32 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in xc.zip(yc) {
        for i in 0..LANES {
            acc[i] += a[i] * b[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Tile, PANEL};
    use std::arch::x86_64::*;

    /// Stores `acc` (a row of [`PANEL`] sums) plus the bias into `out`, only the real columns.
    #[inline(always)]
    fn store(acc: &[f32; PANEL], bias: &[f32], out: &mut [f32]) {
        for ((o, a), b) in out[..bias.len()].iter_mut().zip(acc).zip(bias) {
            *o = a + b;
        }
    }

    /// Runs `tile::<R>` over `rows` rows, `$max` at a time, then the remainder.
    macro_rules! by_tiles {
        ($tile:ident, $t:expr, $rows:expr, $out:expr, $max:literal, [$($r:literal),*]) => {{
            let mut r = 0;
            while r + $max <= $rows {
                $tile::<$max>($t, r, $out);
                r += $max;
            }
            match $rows - r {
                $($r => $tile::<$r>($t, r, $out),)*
                _ => {}
            }
        }};
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn store_512<const R: usize>(acc: &[[__m512; 2]; R], t: &Tile, r0: usize, out: &mut [f32]) {
        for (r, a) in acc.iter().enumerate() {
            let mut row = [0.0f32; PANEL];
            // SAFETY: `row` holds PANEL = 32 floats, two registers' worth.
            unsafe {
                _mm512_storeu_ps(row.as_mut_ptr(), a[0]);
                _mm512_storeu_ps(row.as_mut_ptr().add(16), a[1]);
            }
            store(&row, t.bias, &mut out[(r0 + r) * t.n..]);
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_avx512(t: &Tile, rows: usize, out: &mut [f32]) {
        by_tiles!(tile_avx512, t, rows, out, 6, [5, 4, 3, 2, 1])
    }

    /// The even and odd inputs' weights of 16 columns, widened to f32, from 32 bfloat16 values.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn widen_512(pairs: __m512i) -> (__m512, __m512) {
        let even = _mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16));
        let odd = _mm512_castsi512_ps(_mm512_and_si512(pairs, _mm512_set1_epi32(0xffff_0000u32 as i32)));
        (even, odd)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile_avx512<const R: usize>(t: &Tile, r0: usize, out: &mut [f32]) {
        let panel = &t.panel[..t.pairs * PANEL * 2];
        let wp = panel.as_ptr();
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for j in 0..t.pairs {
            // SAFETY: j < pairs, so the panel row is in bounds.
            let (w0, w1) = unsafe {
                (
                    _mm512_loadu_si512(wp.add(j * PANEL * 2).cast()),
                    _mm512_loadu_si512(wp.add(j * PANEL * 2 + PANEL).cast()),
                )
            };
            let ((e0, o0), (e1, o1)) = (widen_512(w0), widen_512(w1));
            for (r, a) in acc.iter_mut().enumerate() {
                let (xe, xo) = t.pair(r0 + r, j);
                let (xe, xo) = (_mm512_set1_ps(xe), _mm512_set1_ps(xo));
                a[0] = _mm512_fmadd_ps(xo, o0, _mm512_fmadd_ps(xe, e0, a[0]));
                a[1] = _mm512_fmadd_ps(xo, o1, _mm512_fmadd_ps(xe, e1, a[1]));
            }
        }
        store_512(&acc, t, r0, out);
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows_avx2(t: &Tile, rows: usize, out: &mut [f32]) {
        by_tiles!(tile_avx2, t, rows, out, 3, [2, 1])
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile_avx2<const R: usize>(t: &Tile, r0: usize, out: &mut [f32]) {
        let panel = &t.panel[..t.pairs * PANEL * 2];
        let wp = panel.as_ptr();
        let mask = _mm256_set1_epi32(0xffff_0000u32 as i32);
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        for j in 0..t.pairs {
            let mut xs = [(_mm256_setzero_ps(), _mm256_setzero_ps()); R];
            for (r, x) in xs.iter_mut().enumerate() {
                let (e, o) = t.pair(r0 + r, j);
                *x = (_mm256_set1_ps(e), _mm256_set1_ps(o));
            }
            for q in 0..4 {
                // SAFETY: j < pairs and q × 16 + 16 ≤ PANEL × 2, so the 16 values are in bounds.
                let w = unsafe { _mm256_loadu_si256(wp.add(j * PANEL * 2 + q * 16).cast()) };
                let even = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
                let odd = _mm256_castsi256_ps(_mm256_and_si256(w, mask));
                for (a, &(xe, xo)) in acc.iter_mut().zip(&xs) {
                    a[q] = _mm256_fmadd_ps(xo, odd, _mm256_fmadd_ps(xe, even, a[q]));
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let mut row = [0.0f32; PANEL];
            for (i, v) in a.iter().enumerate() {
                // SAFETY: `row` holds 4 registers of 8 floats.
                unsafe { _mm256_storeu_ps(row.as_mut_ptr().add(i * 8), *v) };
            }
            store(&row, t.bias, &mut out[(r0 + r) * t.n..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a kernel should compute: weights in bfloat16, summed in f64.
    fn naive(x: &[f32], w: &[f32], b: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for r in 0..m {
            for c in 0..n {
                let s: f64 =
                    (0..k).map(|i| f64::from(x[r * k + i]) * f64::from(from_bf16(to_bf16(w[c * k + i])))).sum();
                out[r * n + c] = s as f32 + b[c];
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn products_match_the_definition_at_every_edge() {
        // Row counts around the tile heights and the row block; columns around the panel width;
        // odd input counts (the padded pair).
        for &(m, n, k) in &[(1, 1, 1), (1, 32, 384), (5, 33, 7), (7, 64, 16), (13, 95, 40), (70, 31, 3), (130, 97, 65)]
        {
            let (x, w, b) = (values(m * k, 1), values(n * k, 2), values(n, 3));
            let lin = Linear::new(&w, b.clone(), n, k);
            for isa in available() {
                let want = naive(&x, &w, &b, (m, n, k));
                let mut got = vec![f32::NAN; m * n];
                lin.apply_with(isa, &x, m, &mut got);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{isa:?} {m}×{n}×{k} at {i}: {g} vs {w}");
                }
            }
        }
    }

    /// Every kernel this CPU can run, so that each is checked where it can be.
    fn available() -> Vec<Isa> {
        let mut all = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                all.push(Isa::Avx2);
            }
            if has!("avx512f") {
                all.push(Isa::Avx512);
            }
        }
        all
    }

    #[test]
    fn bfloat16_rounds_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(from_bf16(to_bf16(1.0 + 2f32.powi(-8))), 1.0, "a tie goes to even");
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 * 2f32.powi(-8))), 1.0 + 2f32.powi(-6), "a tie goes to even");
        assert_eq!(from_bf16(to_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-12))), 1.0 + 2f32.powi(-7));
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
    }

    #[test]
    fn dot_of_any_length() {
        for len in [0, 1, 15, 16, 17, 32, 100] {
            let (x, y) = (values(len, 4), values(len, 5));
            let want: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
            assert!((dot(&x, &y) - want).abs() < 1e-4, "{len}");
        }
    }
}
