//! A frame-level threshold from tile-level scores (extreme-value calibration).
//!
//! A tiled frame's score is the largest of its tiles' scores, and each tile's score is
//! itself the largest of ~1000 patch distances: a block maximum, whose distribution is
//! well described by a Gumbel law (Fisher–Tippett; patch distances have light tails).
//! If a good frame's T tiles were independent, the frame score would stay below `t`
//! with probability `F(t)^T`, so the threshold for a false-reject rate `alpha` per frame
//! is the `(1 - alpha)^(1/T)` quantile of the tile law. Neighbouring tiles overlap and
//! see related texture, so they are positively dependent, which makes a real frame's
//! maximum smaller than the independent one: the threshold errs on the safe side (fewer
//! false rejects than `alpha`, at some cost in sensitivity).

/// A Gumbel (type I extreme-value) law: `F(x) = exp(-exp(-(x - mu) / beta))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gumbel {
    pub mu: f64,
    pub beta: f64,
}

/// Euler–Mascheroni constant: the mean of a standard Gumbel.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

impl Gumbel {
    /// Fit by the method of moments (`beta = s·√6/π`, `mu = mean − γ·beta`); `None` with
    /// fewer than two finite samples or no spread.
    pub fn fit(samples: &[f32]) -> Option<Gumbel> {
        let xs: Vec<f64> = samples
            .iter()
            .filter(|v| v.is_finite())
            .map(|&v| f64::from(v))
            .collect();
        if xs.len() < 2 {
            return None;
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        let beta = var.sqrt() * 6f64.sqrt() / std::f64::consts::PI;
        (beta > 0.0 && beta.is_finite()).then_some(Gumbel {
            mu: mean - EULER_GAMMA * beta,
            beta,
        })
    }

    pub fn cdf(&self, x: f64) -> f64 {
        (-(-(x - self.mu) / self.beta).exp()).exp()
    }

    /// The value the largest of `n` independent draws stays below with probability
    /// `1 − alpha`: `F(t)^n = 1 − alpha`.
    pub fn max_quantile(&self, n: usize, alpha: f64) -> f64 {
        // ln F(t) = ln(1 − alpha) / n, and F(t) = exp(−exp(−z)) gives z = −ln(−ln F(t)).
        let ln_f = (1.0 - alpha).ln() / n.max(1) as f64;
        self.mu - self.beta * (-ln_f).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patchcore::SplitMix64;

    fn draw(g: &Gumbel, rng: &mut SplitMix64) -> f64 {
        let u = rng.next_f64().clamp(1e-12, 1.0 - 1e-12);
        g.mu - g.beta * (-u.ln()).ln()
    }

    #[test]
    fn fit_recovers_the_law_and_the_frame_quantile_holds_the_false_alarm_rate() {
        let truth = Gumbel {
            mu: 30.0,
            beta: 1.5,
        };
        let mut rng = SplitMix64::new(7);
        // 400 tile maxima: what 4 hold-out frames of 108 tiles give.
        let tiles: Vec<f32> = (0..400).map(|_| draw(&truth, &mut rng) as f32).collect();
        let g = Gumbel::fit(&tiles).unwrap();
        assert!((g.mu - truth.mu).abs() < 0.3, "{g:?}");
        assert!((g.beta - truth.beta).abs() < 0.25, "{g:?}");
        // Frames of 108 independent tiles at the fitted 1% threshold: about 1% exceed it.
        let t = g.max_quantile(108, 0.01);
        assert!((truth.cdf(t).powi(108) - 0.99).abs() < 0.01, "t {t}");
        let frames = 4000;
        let over = (0..frames)
            .filter(|_| {
                (0..108)
                    .map(|_| draw(&truth, &mut rng))
                    .fold(f64::MIN, f64::max)
                    >= t
            })
            .count();
        let rate = over as f64 / frames as f64;
        assert!(rate > 0.002 && rate < 0.025, "false-alarm rate {rate}");
        // One tile per frame: the plain 99% quantile; more tiles push the threshold up.
        assert!(g.max_quantile(1, 0.01) < t);
        assert!((g.cdf(g.max_quantile(1, 0.01)) - 0.99).abs() < 1e-9);
    }

    #[test]
    fn too_few_or_constant_samples_give_no_fit() {
        assert!(Gumbel::fit(&[]).is_none());
        assert!(Gumbel::fit(&[1.0]).is_none());
        assert!(Gumbel::fit(&[2.0, 2.0, 2.0]).is_none());
        assert!(Gumbel::fit(&[f32::NAN, 1.0]).is_none());
    }
}
