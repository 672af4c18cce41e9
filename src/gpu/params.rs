//! Typed kernel parameters. A kernel family declares its parameters once, as a Rust
//! struct with `gpu_params!`; the driver fills the struct and uploads `words()`, and the
//! shader reads each field through a generated WGSL accessor `p_<field>()` (prepended
//! to its source by the pipeline cache), so the two sides cannot disagree on a word
//! number. Words `0..SLOTS` stay the window offsets the dispatcher writes.

use super::{PARAMS, SLOTS};

/// First word a parameter struct may use (after the window offsets, rounded to 8).
pub const FIRST_WORD: usize = if SLOTS <= 8 { 8 } else { SLOTS };

/// A scalar that fits one parameter word, and the prelude function that reads it.
pub trait ParamWord: Copy {
    const READER: &'static str;
    const WGSL_TYPE: &'static str;
    fn word(self) -> u32;
}

impl ParamWord for u32 {
    const READER: &'static str = "pu";
    const WGSL_TYPE: &'static str = "u32";
    fn word(self) -> u32 {
        self
    }
}

impl ParamWord for f32 {
    const READER: &'static str = "pf";
    const WGSL_TYPE: &'static str = "f32";
    fn word(self) -> u32 {
        self.to_bits()
    }
}

impl ParamWord for i32 {
    const READER: &'static str = "pi";
    const WGSL_TYPE: &'static str = "i32";
    fn word(self) -> u32 {
        self as u32
    }
}

/// A field of a parameter struct: a scalar (one word, accessor `p_x()`) or an array of
/// scalars (N words, accessor `p_x(k)`).
pub trait ParamField: Copy {
    const WORDS: usize;
    fn put(self, q: &mut [u32]);
    fn accessor(name: &str, at: usize) -> String;
}

impl<T: ParamWord> ParamField for T {
    const WORDS: usize = 1;
    fn put(self, q: &mut [u32]) {
        q[0] = self.word();
    }
    fn accessor(name: &str, at: usize) -> String {
        format!("fn {name}() -> {} {{ return {}({at}u); }}\n", T::WGSL_TYPE, T::READER)
    }
}

impl<T: ParamWord, const N: usize> ParamField for [T; N] {
    const WORDS: usize = N;
    fn put(self, q: &mut [u32]) {
        for (d, v) in q.iter_mut().zip(self) {
            *d = v.word();
        }
    }
    fn accessor(name: &str, at: usize) -> String {
        let mut s = format!("fn {name}(k: u32) -> {} {{ return {}({at}u + k); }}\n", T::WGSL_TYPE, T::READER);
        if (2..=4).contains(&N) {  // also as one vector: `{name}3()` for three axes
            let parts: Vec<String> = (0..N).map(|k| format!("{name}({k}u)")).collect();
            s.push_str(&format!("fn {name}{N}() -> vec{N}<{t}> {{ return vec{N}<{t}>({}); }}\n", parts.join(", "),
                                t = T::WGSL_TYPE));
        }
        s
    }
}

/// `gpu_params! { pub struct Name { field: u32, dims: [u32; 6], scale: f32 } }`: the
/// struct, its `words()` and its WGSL accessors `wgsl()`.
#[macro_export]
macro_rules! gpu_params {
    ($(#[$m:meta])* $vis:vis struct $name:ident $(as $prefix:ident)? { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        $vis struct $name { $($(#[$fm])* pub $field: $ty),* }

        impl $name {
            /// The parameter block: the fields in declaration order from `FIRST_WORD`.
            pub fn words(&self) -> [u32; $crate::gpu::PARAMS] {
                use $crate::gpu::params::ParamField;
                let mut q = [0u32; $crate::gpu::PARAMS];
                let mut i = $crate::gpu::params::FIRST_WORD;
                $( self.$field.put(&mut q[i..i + <$ty as ParamField>::WORDS]); i += <$ty as ParamField>::WORDS; )*
                let _ = i;
                q
            }

            /// One WGSL function `<prefix>_<field>()` (or `(k)` for arrays) per field; the
            /// prefix is `p` unless the struct names one (`struct S as sgd`), so several
            /// structs can serve the kernels of one shader file.
            pub fn wgsl() -> String {
                use $crate::gpu::params::ParamField;
                let prefix = $crate::gpu_params!(@prefix $($prefix)?);
                let mut s = String::new();
                let mut i = $crate::gpu::params::FIRST_WORD;
                $( s.push_str(&<$ty as ParamField>::accessor(&format!("{prefix}_{}", stringify!($field)), i));
                   i += <$ty as ParamField>::WORDS; )*
                assert!(i <= $crate::gpu::PARAMS, "parameter struct {} needs {} words", stringify!($name), i);
                s
            }
        }
    };
    (@prefix) => { "p" };
    (@prefix $p:ident) => { stringify!($p) };
}

const _: () = assert!(FIRST_WORD < PARAMS);

#[cfg(test)]
mod tests {
    crate::gpu_params! {
        struct Demo { rows: u32, dims: [u32; 3], scale: f32, shift: i32 }
    }

    #[test]
    fn words_and_accessors_agree() {
        let d = Demo { rows: 7, dims: [1, 2, 3], scale: 0.5, shift: -2 };
        let w = d.words();
        assert_eq!(&w[8..12], &[7, 1, 2, 3]);
        assert_eq!(f32::from_bits(w[12]), 0.5);
        assert_eq!(w[13] as i32, -2);
        let src = Demo::wgsl();
        assert!(src.contains("fn p_rows() -> u32 { return pu(8u); }"));
        assert!(src.contains("fn p_dims(k: u32) -> u32 { return pu(9u + k); }"));
        assert!(src.contains("fn p_dims3() -> vec3<u32>"));
        assert!(src.contains("fn p_scale() -> f32 { return pf(12u); }"));
        assert!(src.contains("fn p_shift() -> i32 { return pi(13u); }"));
    }

    crate::gpu_params! {
        struct Named as sgd { count: u32, lr: f32 }
    }

    #[test]
    fn a_named_prefix_keeps_structs_of_one_file_apart() {
        let src = Named::wgsl();
        assert!(src.contains("fn sgd_count() -> u32 { return pu(8u); }"));
        assert!(src.contains("fn sgd_lr() -> f32 { return pf(9u); }"));
    }
}
