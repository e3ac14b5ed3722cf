//! Replays every committed input through the fuzz targets' checks: the seeds in
//! fuzz/corpus/<target>/ and the inputs libFuzzer saved in fuzz/artifacts/<target>/
//! (crash-*, leak-*, timeout-*, oom-*), which stay there as regression inputs once fixed.
//! Runs on stable Rust: `cd fuzz && cargo test`.

use std::path::Path;

#[test]
fn replay_corpus_and_artifacts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for target in docker_stream_logic_fuzz::TARGETS {
        for dir in ["corpus", "artifacts"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
            files.sort();
            for f in files.into_iter().filter(|f| f.is_file()) {
                let data = std::fs::read(&f).unwrap();
                let name = f.display().to_string();
                if std::panic::catch_unwind(|| docker_stream_logic_fuzz::check(target, &data))
                    .is_err()
                {
                    panic!("{target}: {name} fails ({data:?})");
                }
                count += 1;
            }
        }
    }
    assert!(count > 0, "no corpus found");
    eprintln!("replayed {count} inputs");
}
