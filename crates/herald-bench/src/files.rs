//! `files`: one logged-in client uploads a file of S MiB in 512 KiB parts with P parts in
//! flight (`upload.saveBigFilePart`), sends it to itself as a document (which assembles it),
//! then downloads it in 1 MiB chunks with P in flight (`upload.getFile`), checking every
//! byte. Reports MB/s each way, the assembly time, and the server's RSS growth over its
//! resting RSS (sampled every 50 ms), which is what "streaming" has to keep flat.

use crate::client::{self, Client};
use crate::stats::{rss_mib, ServerProbe};
use crate::{connect, seed, Cli};
use anyhow::{bail, Context, Result};
use grammers_tl_types::{enums, functions, types};
use herald_mtproto::rsa::RsaPublic;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const PART: usize = 512 * 1024;
const CHUNK: usize = 1024 * 1024;

pub struct FilesArgs {
    pub size_mib: u64,
    pub streams: usize,
}

#[derive(Serialize)]
struct FilesReport {
    scenario: &'static str,
    size_mib: u64,
    streams: usize,
    upload_mb_s: f64,
    assemble_secs: f64,
    download_mb_s: f64,
    /// Peak server RSS over its RSS before the run, during each phase (MiB).
    upload_rss_growth_mib: Option<f64>,
    download_rss_growth_mib: Option<f64>,
    server_cpu_secs: Option<f64>,
}

/// The bytes of part or chunk `i` of the file, starting at byte `offset` of the file: a
/// pattern that differs per 8-byte word, so a chunk from the wrong place never matches, and
/// per run (`salt`), so the server cannot find the content stored already.
fn fill(buf: &mut [u8], offset: u64, salt: u64) {
    for (i, w) in buf.chunks_mut(8).enumerate() {
        let v = ((offset / 8 + i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt).to_le_bytes();
        w.copy_from_slice(&v[..w.len()]);
    }
}

/// Samples the server's RSS until stopped; returns the peak.
fn sampler(pid: Option<u32>) -> (Arc<AtomicBool>, std::thread::JoinHandle<f64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let mut peak: f64 = 0.0;
        while !s.load(Ordering::Relaxed) {
            if let Some(pid) = pid {
                peak = peak.max(rss_mib(pid));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        peak
    });
    (stop, h)
}

async fn lanes<F, Fut>(streams: usize, count: usize, f: F) -> Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..streams.max(1) {
        let (next, f) = (next.clone(), f.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                f(i).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.context("a lane panicked")??;
    }
    Ok(())
}

pub async fn run(cli: &Cli, key: &RsaPublic, a: FilesArgs) -> Result<()> {
    let size = a.size_mib * 1024 * 1024;
    if size == 0 || size > 4000 * 1024 * 1024 {
        bail!("--size-mib must be 1..4000 (8000 parts of 512 KiB)");
    }
    let c: Arc<Client> = connect(cli, key, 0).await?;
    client::log_in(&c, &client::test_phone((seed() % 80_000) as usize)).await?;
    let probe = cli.server_pid.map(ServerProbe::start);
    let resting = cli.server_pid.map(rss_mib);
    let parts = size.div_ceil(PART as u64) as usize;
    let file_id = (seed() >> 1) as i64;
    let salt = seed();

    let (stop, peak) = sampler(cli.server_pid);
    let started = Instant::now();
    let up = c.clone();
    lanes(a.streams, parts, move |i| {
        let c = up.clone();
        async move {
            let len = (size - (i * PART) as u64).min(PART as u64) as usize;
            let mut bytes = vec![0u8; len];
            fill(&mut bytes, (i * PART) as u64, salt);
            let ok = c.call(&functions::upload::SaveBigFilePart { file_id, file_part: i as i32, file_total_parts: parts as i32, bytes }).await?;
            if !ok {
                bail!("part {i} answered false");
            }
            Ok(())
        }
    })
    .await?;
    let upload_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let upload_peak = peak.join().unwrap_or(0.0);

    let started = Instant::now();
    let media = enums::InputMedia::UploadedDocument(types::InputMediaUploadedDocument {
        nosound_video: false,
        force_file: true,
        spoiler: false,
        file: enums::InputFile::Big(types::InputFileBig { id: file_id, parts: parts as i32, name: "bench.bin".into() }),
        thumb: None,
        mime_type: "application/octet-stream".into(),
        attributes: vec![],
        stickers: None,
        video_cover: None,
        video_timestamp: None,
        ttl_seconds: None,
    });
    let sent = c
        .call(&functions::messages::SendMedia {
            silent: false,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer: enums::InputPeer::PeerSelf,
            reply_to: None,
            media,
            message: String::new(),
            random_id: (seed() >> 1) as i64,
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
            suggested_post: None,
        })
        .await?;
    let assemble_secs = started.elapsed().as_secs_f64();
    let doc = document_of(&sent).context("sendMedia answered without the document")?;
    if doc.size != size as i64 {
        bail!("the server says {} bytes, {size} were sent", doc.size);
    }

    let (stop, peak) = sampler(cli.server_pid);
    let started = Instant::now();
    let chunks = size.div_ceil(CHUNK as u64) as usize;
    let location = enums::InputFileLocation::InputDocumentFileLocation(types::InputDocumentFileLocation {
        id: doc.id,
        access_hash: doc.access_hash,
        file_reference: doc.file_reference.clone(),
        thumb_size: String::new(),
    });
    let bad = Arc::new(Mutex::new(None));
    let (down, bad2) = (c.clone(), bad.clone());
    lanes(a.streams, chunks, move |i| {
        let (c, location, bad) = (down.clone(), location.clone(), bad2.clone());
        async move {
            let offset = (i * CHUNK) as u64;
            let enums::upload::File::File(f) =
                c.call(&functions::upload::GetFile { precise: false, cdn_supported: false, location, offset: offset as i64, limit: CHUNK as i32 }).await?
            else {
                bail!("a CDN redirect");
            };
            let mut want = vec![0u8; (size - offset).min(CHUNK as u64) as usize];
            fill(&mut want, offset, salt);
            if f.bytes != want {
                *bad.lock().unwrap() = Some(i);
            }
            Ok(())
        }
    })
    .await?;
    let download_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let download_peak = peak.join().unwrap_or(0.0);
    if let Some(i) = *bad.lock().unwrap() {
        bail!("chunk {i} came back different");
    }

    let mb = size as f64 / 1e6;
    let report = FilesReport {
        scenario: "files",
        size_mib: a.size_mib,
        streams: a.streams,
        upload_mb_s: mb / upload_secs,
        assemble_secs,
        download_mb_s: mb / download_secs,
        upload_rss_growth_mib: resting.map(|r| (upload_peak - r).max(0.0)),
        download_rss_growth_mib: resting.map(|r| (download_peak - r).max(0.0)),
        server_cpu_secs: probe.map(|p| p.finish().cpu_secs),
    };
    eprintln!(
        "files: {} MiB, {} in flight: upload {:.0} MB/s, assemble {:.1} s, download {:.0} MB/s (every byte checked); server RSS growth upload {} / download {}",
        a.size_mib,
        a.streams,
        report.upload_mb_s,
        assemble_secs,
        report.download_mb_s,
        report.upload_rss_growth_mib.map_or("n/a".into(), |g| format!("{g:.0} MiB")),
        report.download_rss_growth_mib.map_or("n/a".into(), |g| format!("{g:.0} MiB")),
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn document_of(u: &enums::Updates) -> Option<types::Document> {
    let enums::Updates::Updates(u) = u else { return None };
    u.updates.iter().find_map(|up| match up {
        enums::Update::NewMessage(n) => match &n.message {
            enums::Message::Message(m) => match &m.media {
                Some(enums::MessageMedia::Document(d)) => match &d.document {
                    Some(enums::Document::Document(doc)) => Some(doc.clone()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        },
        _ => None,
    })
}
