//! Small statistics helpers: Gaussian tail and multiple-hypothesis correction.

/// Complementary error function, fractional error < 1.2e-7 (Numerical Recipes `erfcc`,
/// Chebyshev fit).
pub(crate) fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let ans = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        ans
    } else {
        2.0 - ans
    }
}

/// Upper tail of the standard normal: P(Z >= z).
pub(crate) fn norm_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// P(max of `n` independent standard normals >= z) = 1 - (1 - sf(z))^n (Šidák).
/// Conservative (too large) when the hypotheses are positively correlated.
pub(crate) fn max_of_n_sf(z: f64, n: usize) -> f64 {
    let p1 = norm_sf(z).clamp(0.0, 1.0);
    if p1 >= 1.0 {
        return 1.0;
    }
    let p = -((n.max(1) as f64) * (-p1).ln_1p()).exp_m1();
    p.clamp(0.0, 1.0)
}

/// Mean and standard deviation of `values`, skipping entries where `skip(i)`.
pub(crate) fn mean_std_excluding(values: &[f64], skip: impl Fn(usize) -> bool) -> (f64, f64) {
    let mut n = 0.0f64;
    let mut s = 0.0f64;
    let mut s2 = 0.0f64;
    for (i, &v) in values.iter().enumerate() {
        if skip(i) || !v.is_finite() {
            continue;
        }
        n += 1.0;
        s += v;
        s2 += v * v;
    }
    if n < 2.0 {
        return (0.0, 0.0);
    }
    let m = s / n;
    let var = ((s2 - n * m * m) / (n - 1.0)).max(0.0);
    (m, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail() {
        assert!((norm_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_sf(1.959_964) - 0.025).abs() < 1e-6);
        assert!((norm_sf(4.753_424) / 1e-6 - 1.0).abs() < 1e-3);
        assert!((max_of_n_sf(0.0, 1) - 0.5).abs() < 1e-7);
        assert!(max_of_n_sf(-5.0, 100) > 0.999);
        assert!(max_of_n_sf(8.0, 16384) < 1e-10);
    }
}
