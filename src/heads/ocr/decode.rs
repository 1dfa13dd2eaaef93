//! Recognition decoding: CTC over the recogniser's character list.

/// CTC greedy decoding: best class per step, repeats merged, blanks (class 0) dropped;
/// the confidence is the mean probability of the kept steps (0 when none).
pub fn ctc_greedy(probs: &[f32], classes: usize, characters: &[String]) -> (String, f32) {
    let mut text = String::new();
    let (mut sum, mut kept) = (0f32, 0usize);
    let mut prev = usize::MAX;
    for step in probs.chunks_exact(classes) {
        let (mut best, mut p) = (0usize, f32::NEG_INFINITY);
        for (c, &v) in step.iter().enumerate() {
            if v > p {
                (best, p) = (c, v);
            }
        }
        if best != prev && best != 0 {
            if let Some(ch) = characters.get(best) {
                text.push_str(ch);
            }
            sum += p;
            kept += 1;
        }
        prev = best;
    }
    let score = if kept == 0 { 0.0 } else { sum / kept as f32 };
    (text, score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let chars: Vec<String> = ["blank", "a", "b", " "].map(String::from).to_vec();
        #[rustfmt::skip]
        let probs = [
            0.1, 0.9, 0.0, 0.0, // a
            0.1, 0.8, 0.1, 0.0, // a (repeat)
            0.9, 0.1, 0.0, 0.0, // blank
            0.2, 0.7, 0.1, 0.0, // a
            0.0, 0.0, 0.6, 0.4, // b
        ];
        let (text, score) = ctc_greedy(&probs, 4, &chars);
        assert_eq!(text, "aab");
        assert!((score - (0.9 + 0.7 + 0.6) / 3.0).abs() < 1e-6);
    }
}
