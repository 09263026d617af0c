//! Triage throughput: messages per second on one core, over a realistic mixed corpus.
//!
//! The corpus is every case of `src/triage/corpus/*.toml` (short SMS in eight language sets, mixed
//! messages, empty voice reports), plus a tenth as long web-form reports (several messages joined).
//! Target (issue 5): at least 50,000 messages per second per core.
//!
//! Run: `cargo bench --bench triage`; the `thrpt` line is messages per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use komek::triage::{ChannelKind, Engine, TriageInput};

const CORPUS: &[&str] = &[
    include_str!("../src/triage/corpus/ru.toml"),
    include_str!("../src/triage/corpus/ru_latn.toml"),
    include_str!("../src/triage/corpus/kk.toml"),
    include_str!("../src/triage/corpus/ky.toml"),
    include_str!("../src/triage/corpus/tg.toml"),
    include_str!("../src/triage/corpus/uz_latn.toml"),
    include_str!("../src/triage/corpus/uz_cyrl.toml"),
    include_str!("../src/triage/corpus/en.toml"),
    include_str!("../src/triage/corpus/mixed.toml"),
    include_str!("../src/triage/corpus/extra.toml"),
    include_str!("../src/triage/corpus/holdout.toml"),
];

fn messages() -> Vec<String> {
    let mut out = Vec::new();
    for file in CORPUS {
        let Ok(table) = toml::from_str::<toml::Table>(file) else {
            continue;
        };
        let Some(cases) = table.get("case").and_then(|c| c.as_array()) else {
            continue;
        };
        for case in cases {
            if let Some(text) = case.get("text").and_then(|t| t.as_str()) {
                out.push(text.to_owned());
            }
        }
    }
    // Web-form reports: longer, several paragraphs.
    let long: Vec<String> = out.chunks(10).map(|c| c.join("\n\n")).collect();
    out.extend(long);
    out
}

fn bench(c: &mut Criterion) {
    let Ok(engine) = Engine::embedded() else {
        return;
    };
    let msgs = messages();
    let mut group = c.benchmark_group("triage");
    group.throughput(Throughput::Elements(msgs.len() as u64));
    group.bench_function("assess_mixed_corpus", |b| {
        b.iter(|| {
            for text in &msgs {
                let t = engine.assess(&TriageInput {
                    text: black_box(text),
                    channel: ChannelKind::Sms,
                    ivr_path: None,
                });
                black_box(t);
            }
        })
    });
    group.finish();

    c.bench_function("engine_embedded_load", |b| {
        b.iter(|| black_box(Engine::embedded().is_ok()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
