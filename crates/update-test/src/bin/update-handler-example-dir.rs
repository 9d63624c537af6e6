//! An example out-of-tree component handler (docs/components.md `## Out-of-tree handlers`,
//! protocol 1): a versioned directory installer. It links nothing of libupdate — only the
//! protocol's JSON — and is installed as `/usr/lib/update/handlers/<kind>` (the tests install it
//! as `example-dir`).
//!
//! Device setting `path` (a directory under the root). The payload is a tar of regular files
//! and directories. Version `V` is unpacked into `<path>/versions/V/` with a list of its files'
//! SHA-256 in `<path>/versions/V.sums`; `<path>/current` is a symbolic link to `versions/V`,
//! swapped atomically (new link, rename). `status` reads the active version back from that link;
//! `health` checks every file of the active version against its sums. State (committed, staged,
//! on trial) is in `<state_dir>/state.json`, written atomically.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Component as PathPart, Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MAJOR: u64 = 1;

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    let mut input = String::new();
    let answer = match std::io::stdin().take(1 << 20).read_to_string(&mut input) {
        Err(e) => Err(format!("read the request: {e}")),
        Ok(_) => serde_json::from_str::<Value>(&input).map_err(|e| format!("parse the request: {e}")).and_then(handle),
    };
    let (ok, body) = match answer {
        Ok(mut body) => {
            body["ok"] = json!(true);
            (true, body)
        }
        Err(e) => (false, json!({ "ok": false, "error": e })),
    };
    let mut body = body;
    body["protocol"] = json!({ "major": MAJOR, "minor": 0 });
    println!("{body}");
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn text<'a>(v: &'a Value, key: &str) -> Res<&'a str> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| format!("the request has no text '{key}'"))
}

struct Ctx {
    target: PathBuf,
    state_file: PathBuf,
    state: Value,
}

impl Ctx {
    fn versions(&self) -> PathBuf {
        self.target.join("versions")
    }
    fn current(&self) -> PathBuf {
        self.target.join("current")
    }
    fn get(&self, key: &str) -> Option<String> {
        self.state.get(key).and_then(Value::as_str).map(str::to_owned)
    }
    fn set(&mut self, key: &str, value: Option<&str>) {
        self.state[key] = value.map_or(Value::Null, |v| json!(v));
    }
    fn save(&self) -> Res<()> {
        let tmp = self.state_file.with_extension("json.tmp");
        write_synced(&tmp, self.state.to_string().as_bytes())?;
        fs::rename(&tmp, &self.state_file).map_err(|e| format!("rename {}: {e}", self.state_file.display()))
    }
    /// The version `current` points at, read from the link itself.
    fn active(&self) -> Option<String> {
        let link = fs::read_link(self.current()).ok()?;
        link.strip_prefix("versions").ok().map(|v| v.to_string_lossy().into_owned())
    }
    fn point_current(&self, version: Option<&str>) -> Res<()> {
        let current = self.current();
        let Some(v) = version else {
            return match fs::remove_file(&current) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("remove {}: {e}", current.display())),
                _ => Ok(()),
            };
        };
        let new = self.target.join(".current.new");
        let _ = fs::remove_file(&new);
        std::os::unix::fs::symlink(Path::new("versions").join(v), &new)
            .map_err(|e| format!("link {}: {e}", new.display()))?;
        fs::rename(&new, &current).map_err(|e| format!("rename {}: {e}", current.display()))?;
        fs::File::open(&self.target)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("fsync {}: {e}", self.target.display()))
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Res<()> {
    let mut f = fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| format!("write {}: {e}", path.display()))
}

fn handle(req: Value) -> Res<Value> {
    let major = req.pointer("/protocol/major").and_then(Value::as_u64);
    if major != Some(MAJOR) {
        return Err(format!("unsupported protocol major {major:?}; this handler speaks {MAJOR}"));
    }
    let phase = text(&req, "phase")?;
    let root = PathBuf::from(text(&req, "root")?);
    let state_dir = PathBuf::from(text(&req, "state_dir")?);
    let settings = req.pointer("/device/settings").cloned().unwrap_or(json!({}));
    if let Some(k) = settings.as_object().and_then(|m| m.keys().find(|k| *k != "path")) {
        return Err(format!("unknown setting '{k}'"));
    }
    let path = text(&settings, "path")?;
    if !path.starts_with('/') || Path::new(path).components().any(|c| c == PathPart::ParentDir) {
        return Err(format!("setting 'path' must be an absolute path without '..': {path}"));
    }
    let target = root.join(path.trim_start_matches('/'));
    let state_file = state_dir.join("state.json");
    let state = match fs::read(&state_file) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("parse {}: {e}", state_file.display()))?,
        Err(_) => json!({}),
    };
    let mut ctx = Ctx { target, state_file, state };
    let version = req.pointer("/component/version").and_then(Value::as_str).map(str::to_owned);
    let need_version = || version.clone().ok_or_else(|| format!("{phase} needs a component"));
    match phase {
        "status" => Ok(json!({ "status": status(&ctx) })),
        "check" => {
            if let Some(k) = req.pointer("/component/options").and_then(Value::as_object).and_then(|m| m.keys().next())
            {
                return Err(format!("unknown option '{k}'"));
            }
            need_version()?;
            Ok(json!({}))
        }
        "install" => {
            let v = need_version()?;
            install(&mut ctx, &req, &v)?;
            Ok(json!({}))
        }
        "activate" => {
            let v = need_version()?;
            if ctx.get("staged").as_deref() != Some(&v) {
                return Err(format!("version {v} is not installed"));
            }
            ctx.point_current(Some(&v))?;
            ctx.state["trial"] = json!(true);
            ctx.save()?;
            Ok(json!({ "activation": "now" }))
        }
        "health" => {
            let v = need_version()?;
            if ctx.active().as_deref() != Some(&v) {
                return Err(format!("version {v} is not active"));
            }
            verify(&ctx, &v)?;
            Ok(json!({}))
        }
        "commit" => {
            let v = need_version()?;
            if ctx.get("committed").as_deref() == Some(&v) && ctx.get("staged").is_none() {
                return Ok(json!({}));
            }
            if ctx.get("staged").as_deref() != Some(&v) || ctx.active().as_deref() != Some(&v) {
                return Err(format!("version {v} is not active on trial"));
            }
            let old = ctx.get("committed");
            ctx.set("committed", Some(&v));
            ctx.set("staged", None);
            ctx.state["trial"] = json!(false);
            ctx.save()?;
            if let Some(old) = old.filter(|o| *o != v) {
                remove_version(&ctx, &old)?;
            }
            Ok(json!({}))
        }
        "rollback" => {
            let committed = ctx.get("committed");
            ctx.point_current(committed.as_deref())?;
            if let Some(staged) = ctx.get("staged").filter(|s| Some(s) != committed.as_ref()) {
                remove_version(&ctx, &staged)?;
            }
            ctx.set("staged", None);
            ctx.state["trial"] = json!(false);
            ctx.save()?;
            Ok(json!({}))
        }
        other => Err(format!("unknown phase '{other}'")),
    }
}

fn status(ctx: &Ctx) -> Value {
    let active = ctx.active();
    let committed = ctx.get("committed");
    let staged = ctx.get("staged");
    let trial = ctx.state.get("trial").and_then(Value::as_bool).unwrap_or(false);
    let state = match (&active, &staged) {
        (None, _) if staged.is_none() => "absent",
        (Some(a), Some(s)) if trial && a == s => "trial",
        (_, Some(_)) => "installed",
        _ => "committed",
    };
    let inactive = if state == "trial" { committed } else { staged };
    json!({ "active": active, "inactive": inactive, "state": state, "detail": format!("{}", ctx.current().display()) })
}

fn remove_version(ctx: &Ctx, v: &str) -> Res<()> {
    let dir = ctx.versions().join(v);
    let _ = fs::remove_file(ctx.versions().join(format!("{v}.sums")));
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("remove {}: {e}", dir.display())),
        _ => Ok(()),
    }
}

/// Reads exactly `size` bytes from the payload FIFO, checks their digest, unpacks them.
fn install(ctx: &mut Ctx, req: &Value, v: &str) -> Res<()> {
    if v.is_empty() || v.contains('/') || v.starts_with('.') {
        return Err(format!("version '{v}' cannot name a directory"));
    }
    if ctx.state.get("trial").and_then(Value::as_bool).unwrap_or(false) {
        return Err("a version is on trial; commit or roll it back first".into());
    }
    let fifo = text(req, "payload")?;
    let size = req.pointer("/component/size").and_then(Value::as_u64).ok_or("no component size")?;
    let sha = req.pointer("/component/sha256").and_then(Value::as_str).ok_or("no component sha256")?;
    let mut bytes = Vec::new();
    fs::File::open(fifo)
        .and_then(|f| f.take(size + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("read the payload from {fifo}: {e}"))?;
    if bytes.len() as u64 != size {
        return Err(format!("the payload has {} bytes, the manifest says {size}", bytes.len()));
    }
    if hex::encode(Sha256::digest(&bytes)) != sha.to_ascii_lowercase() {
        return Err("the payload's SHA-256 differs from the manifest's".into());
    }
    if let Some(old) = ctx.get("staged").filter(|s| Some(s) != ctx.get("committed").as_ref()) {
        remove_version(ctx, &old)?;
    }
    if ctx.get("committed").as_deref() == Some(v) && ctx.versions().join(v).is_dir() {
        ctx.set("staged", Some(v));
        return ctx.save();
    }
    let tmp = ctx.versions().join(format!(".{v}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let mut sums = BTreeMap::new();
    let mut archive = tar::Archive::new(bytes.as_slice());
    for entry in archive.entries().map_err(|e| format!("read the tar: {e}"))? {
        let mut entry = entry.map_err(|e| format!("read the tar: {e}"))?;
        let name = entry.path().map_err(|e| format!("tar entry name: {e}"))?.into_owned();
        if name.components().any(|c| !matches!(c, PathPart::Normal(_) | PathPart::CurDir)) {
            return Err(format!("tar entry {} leaves the version directory", name.display()));
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(format!("tar entry {} is a {kind:?}: only files and directories", name.display()));
        }
        if kind.is_file() {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(|e| format!("read {}: {e}", name.display()))?;
            let out = tmp.join(&name);
            if let Some(p) = out.parent() {
                fs::create_dir_all(p).map_err(|e| format!("create {}: {e}", p.display()))?;
            }
            write_synced(&out, &data)?;
            sums.insert(name.to_string_lossy().into_owned(), hex::encode(Sha256::digest(&data)));
        } else {
            fs::create_dir_all(tmp.join(&name)).map_err(|e| format!("create {}: {e}", name.display()))?;
        }
    }
    write_synced(&ctx.versions().join(format!("{v}.sums")), json!(sums).to_string().as_bytes())?;
    let dir = ctx.versions().join(v);
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir).map_err(|e| format!("rename {}: {e}", dir.display()))?;
    ctx.set("staged", Some(v));
    ctx.save()
}

fn verify(ctx: &Ctx, v: &str) -> Res<()> {
    let sums_file = ctx.versions().join(format!("{v}.sums"));
    let sums: BTreeMap<String, String> = fs::read(&sums_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| format!("cannot read {}", sums_file.display()))?;
    for (name, sum) in sums {
        let p = ctx.current().join(&name);
        let data = fs::read(&p).map_err(|e| format!("read {}: {e}", p.display()))?;
        if hex::encode(Sha256::digest(&data)) != sum {
            return Err(format!("{} differs from version {v}", p.display()));
        }
    }
    Ok(())
}
