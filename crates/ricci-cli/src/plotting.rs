//! PNG plots shared by the subcommands (`train`'s loss curve, `analyze`'s
//! spectra): a font from the system, drawing into a pixel buffer, PNG
//! encoding and an atomic write, and a line chart of named series.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use ricci::io;

use crate::CliError;

pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Registers a system TrueType font for the plot's text, once; `None` when
/// the machine has none of the usual ones (the plot is then drawn without text).
pub fn font_family() -> Option<&'static str> {
    use std::sync::OnceLock;
    static FONT: OnceLock<Option<&'static str>> = OnceLock::new();
    *FONT.get_or_init(|| {
        const CANDIDATES: &[&str] = &[
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/System/Library/Fonts/Supplemental/Arial.ttf",
        ];
        let bytes = CANDIDATES.iter().find_map(|p| std::fs::read(p).ok())?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("ricci-sans", FontStyle::Normal, bytes).ok()?;
        Some("ricci-sans")
    })
}

/// An RGB buffer as PNG bytes; `what` names the file in errors.
pub fn encode_png(rgb: &[u8], w: u32, h: u32, what: &str) -> Result<Vec<u8>, CliError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .map_err(|e| CliError(format!("cannot encode {what}: {e}")))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| CliError(format!("cannot encode {what}: {e}")))?;
    }
    Ok(out)
}

/// Draws with `draw` on a white `w x h` canvas and writes it to `path` as a
/// PNG, atomically.
pub fn write_png(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>, Option<&str>) -> DrawResult,
) -> Result<(), CliError> {
    let what = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| CliError(format!("cannot draw {what}: {e}")))?;
        draw(&root, font_family()).map_err(|e| CliError(format!("cannot draw {what}: {e}")))?;
        root.present()
            .map_err(|e| CliError(format!("cannot draw {what}: {e}")))?;
    }
    io::write_atomic(path, &encode_png(&pixels, w, h, &what)?)?;
    Ok(())
}

/// A line chart: what to draw and how to label it.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    /// Logarithmic y axis (non-positive values are left out).
    pub log_y: bool,
    /// `(label, points)`; a legend is drawn for at most 12 series.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// A short axis label: plain for moderate magnitudes, `1e-5` style beyond.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || (1e-3..1e4).contains(&a) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// The matplotlib "tab10" colours, cycled.
fn colour(i: usize) -> RGBColor {
    const TAB10: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TAB10[i % TAB10.len()];
    RGBColor(r, g, b)
}

/// Draws `chart` on `area` (one panel).
pub fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &LineChart,
    font: Option<&str>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let keep = |y: f64| y.is_finite() && (!chart.log_y || y > 0.0);
    let points: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|&(x, y)| x.is_finite() && keep(y))
        .collect();
    if points.is_empty() {
        return Ok(());
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, get: fn(&(f64, f64)) -> f64| {
        points.iter().map(get).fold(init, f)
    };
    let (x0, x1) = (
        fold(f64::min, f64::INFINITY, |p| p.0),
        fold(f64::max, f64::NEG_INFINITY, |p| p.0),
    );
    let (y0, y1) = (
        fold(f64::min, f64::INFINITY, |p| p.1),
        fold(f64::max, f64::NEG_INFINITY, |p| p.1),
    );
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(15)
        .x_label_area_size(if font.is_some() { 40 } else { 5 })
        .y_label_area_size(if font.is_some() { 70 } else { 5 });
    if let Some(f) = font {
        builder.caption(chart.title, (f, 20));
    }
    let legend = chart.series.len() <= 12 && font.is_some();
    let styled = |i: usize| colour(i).stroke_width(2);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut c = $chart;
            let mut mesh = c.configure_mesh();
            mesh.light_line_style(RGBColor(235, 235, 235));
            if let Some(f) = font {
                mesh.x_desc(chart.x_desc)
                    .y_desc(chart.y_desc)
                    .label_style((f, 13))
                    .y_label_formatter(&|v| tick(*v));
            } else {
                mesh.disable_x_axis().disable_y_axis();
            }
            mesh.draw()?;
            for (i, (label, pts)) in chart.series.iter().enumerate() {
                let pts: Vec<(f64, f64)> = pts.iter().copied().filter(|&(_, y)| keep(y)).collect();
                let drawn = c.draw_series(LineSeries::new(pts, styled(i)))?;
                if legend {
                    let col = colour(i);
                    drawn
                        .label(label.as_str())
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], col));
                }
            }
            if let (true, Some(f)) = (legend, font) {
                c.configure_series_labels()
                    .label_font((f, 12))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()?;
            }
        }};
    }
    if chart.log_y {
        let y1 = if y1 > y0 { y1 } else { y0 * 10.0 };
        finish!(builder.build_cartesian_2d(x0..x1, (y0 * 0.8..y1 * 1.25).log_scale())?);
    } else {
        let pad = if y1 > y0 { 0.05 * (y1 - y0) } else { 1.0 };
        finish!(builder.build_cartesian_2d(x0..x1, y0 - pad..y1 + pad)?);
    }
    Ok(())
}
