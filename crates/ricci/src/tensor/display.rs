//! `Display` in numpy's style, summarised when large.
