//! `loss.csv` and `loss.png`: the loss of every step, the validation loss
//! (and accuracy) at every evaluation.

use std::path::Path;

use plotters::prelude::*;
use ricci::io;

use crate::plotting::{encode_png, font_family, DrawResult};
use crate::CliError;

#[derive(Clone, Debug, Default)]
struct Row {
    step: usize,
    lr: f64,
    train_loss: f64,
    val_loss: Option<f64>,
    accuracy: Option<f64>,
}

/// The rows of `loss.csv`.
#[derive(Clone, Debug, Default)]
pub struct LossLog {
    rows: Vec<Row>,
}

const HEADER: &str = "step,lr,train_loss,val_loss,accuracy";

impl LossLog {
    pub fn push(&mut self, step: usize, lr: f64, train_loss: f64) {
        self.rows.push(Row {
            step,
            lr,
            train_loss,
            ..Row::default()
        });
    }

    /// Attaches evaluation results to the row of `step`.
    pub fn set_eval(&mut self, step: usize, val_loss: f64, accuracy: Option<f64>) {
        if let Some(r) = self.rows.iter_mut().rev().find(|r| r.step == step) {
            r.val_loss = Some(val_loss);
            r.accuracy = accuracy;
        }
    }

    /// The rows of an earlier run's `loss.csv` up to `step` (later rows
    /// belong to steps the checkpoint does not contain).
    pub fn read(path: &Path, step: usize) -> Result<LossLog, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LossLog::default()),
            Err(e) => return Err(CliError(format!("cannot read {}: {e}", path.display()))),
        };
        let bad =
            |line: usize| CliError(format!("{}:{line}: not a ricci loss log", path.display()));
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 5 {
                return Err(bad(i + 1));
            }
            let num = |s: &str| -> Result<Option<f64>, CliError> {
                if s.is_empty() {
                    Ok(None)
                } else {
                    s.parse::<f64>().map(Some).map_err(|_| bad(i + 1))
                }
            };
            let row = Row {
                step: f[0].parse().map_err(|_| bad(i + 1))?,
                lr: num(f[1])?.unwrap_or(0.0),
                train_loss: num(f[2])?.unwrap_or(f64::NAN),
                val_loss: num(f[3])?,
                accuracy: num(f[4])?,
            };
            if row.step <= step {
                rows.push(row);
            }
        }
        Ok(LossLog { rows })
    }

    /// Writes `loss.csv` (exact decimal forms of the values, so two runs
    /// can be compared bit for bit) and `loss.png`.
    pub fn write(&self, dir: &Path) -> Result<(), CliError> {
        let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:?}"));
        let mut csv = format!("{HEADER}\n");
        for r in &self.rows {
            csv.push_str(&format!(
                "{},{:?},{:?},{},{}\n",
                r.step,
                r.lr,
                r.train_loss,
                opt(r.val_loss),
                opt(r.accuracy)
            ));
        }
        io::write_atomic(dir.join("loss.csv"), csv.as_bytes())?;
        self.plot(&dir.join("loss.png"))
    }

    fn plot(&self, path: &Path) -> Result<(), CliError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let (w, h) = (900u32, 520u32);
        let mut pixels = vec![0u8; (w * h * 3) as usize];
        let font = font_family();
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            draw(&root, &self.rows, font)
                .map_err(|e| CliError(format!("cannot draw the loss plot: {e}")))?;
            root.present()
                .map_err(|e| CliError(format!("cannot draw the loss plot: {e}")))?;
        }
        let png = encode_png(&pixels, w, h, "loss.png")?;
        io::write_atomic(path, &png)?;
        Ok(())
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[Row],
    font: Option<&str>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let x_max = rows.last().map_or(1, |r| r.step).max(1) as f64;
    let finite = |v: f64| v.is_finite().then_some(v);
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|r| [finite(r.train_loss), r.val_loss.and_then(finite)])
        .flatten()
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-6);
    let hi = values
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(lo * 1.01);
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(15)
        .x_label_area_size(if font.is_some() { 40 } else { 5 })
        .y_label_area_size(if font.is_some() { 60 } else { 5 });
    if let Some(f) = font {
        builder.caption("loss", (f, 22));
    }
    let mut chart = builder.build_cartesian_2d(0f64..x_max, (lo * 0.9..hi * 1.1).log_scale())?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(235, 235, 235));
    if let Some(f) = font {
        mesh.x_desc("step").y_desc("loss").label_style((f, 14));
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw()?;
    let blue = RGBColor(31, 119, 180);
    let red = RGBColor(214, 39, 40);
    let train_points: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.train_loss > 0.0)
        .map(|r| (r.step as f64, r.train_loss))
        .collect();
    let val_points: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.val_loss.filter(|v| *v > 0.0).map(|v| (r.step as f64, v)))
        .collect();
    let train = chart.draw_series(LineSeries::new(train_points, blue))?;
    if font.is_some() {
        train
            .label("train")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], blue));
    }
    let val = chart.draw_series(LineSeries::new(val_points.clone(), red.stroke_width(2)))?;
    if font.is_some() {
        val.label("validation")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], red));
    }
    chart.draw_series(val_points.iter().map(|&p| Circle::new(p, 3, red.filled())))?;
    if let Some(f) = font {
        chart
            .configure_series_labels()
            .label_font((f, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}
