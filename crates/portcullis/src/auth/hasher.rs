//! argon2id verification on a few dedicated threads, each with its own
//! reusable block memory.
//!
//! A check costs tens of milliseconds of CPU and m (19 MiB by default) of
//! memory by design. Run on tokio's blocking pool, a burst of logins spread
//! that memory over as many threads, and glibc kept each thread's arena
//! (megabytes per logged-in session in the idle benchmark); allocating and
//! freeing m per check on fixed threads was no better with glibc. Here at
//! most `threads` checks run at once, each in memory reserved when its
//! thread starts (sized for the configured hashes) and reused, so the cost
//! is fixed (threads x m, 2 x 19 MiB on a 2-core machine) however many
//! sessions log in, and the runtime's worker threads never hash a costly
//! hash. A hash of at most `INLINE_WORK` (memory x passes, tens of
//! microseconds) is checked on the calling thread: handing it to a hash
//! thread and back cost more than the check.
//!
//! Besides argon2id, the hashes of other servers and of `/etc/shadow` are
//! accepted for migration ([`Scheme`]): bcrypt, SHA-512 and SHA-256 crypt,
//! PBKDF2 in the PHC format, and MD5 crypt (weak: `check-config` warns).
//! They are checked on the same threads, whatever their cost, and never
//! rewritten as argon2id (that would rewrite the config file).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

/// The most work (KiB of memory x passes) a check may take to be made on
/// the calling thread: 64 KiB-passes, about 15-30 us of CPU here, less than
/// the two thread wake-ups of a hand-off.
const INLINE_WORK: u64 = 64;

struct Job {
    hash: String,
    password: String,
    done: oneshot::Sender<bool>,
}

/// The verification threads.
#[derive(Debug, Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Hasher {
    /// Start `threads` verification threads (at least one), each reserving
    /// `reserve` argon2 blocks (1 KiB each) up front.
    pub fn new(threads: usize, reserve: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut blocks: Vec<Block> = vec![Block::default(); reserve];
                    loop {
                        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                            Ok(j) => j,
                            Err(_) => return, // the server is gone
                        };
                        let ok = verify_with(&job.hash, &job.password, &mut blocks);
                        let _ = job.done.send(ok);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-check thread");
            }
        }
        Hasher { jobs: tx }
    }

    /// Check `password` against a PHC string.
    pub async fn verify(&self, hash: String, password: String) -> Result<bool, String> {
        if work(&hash) <= INLINE_WORK {
            return Ok(verify_with(&hash, &password, &mut Vec::new()));
        }
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job {
                hash,
                password,
                done,
            })
            .map_err(|_| "the password-check threads are gone".to_owned())?;
        result
            .await
            .map_err(|_| "a password-check thread failed".to_owned())
    }
}

/// The kinds of password hash a `[[users]]` entry may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `$argon2id$` (and the other argon2 variants), PHC strings.
    Argon2,
    /// `$2b$`, `$2a$`, `$2y$`: bcrypt.
    Bcrypt,
    /// `$6$`: SHA-512 crypt (glibc, `/etc/shadow`).
    Sha512Crypt,
    /// `$5$`: SHA-256 crypt.
    Sha256Crypt,
    /// `$pbkdf2-sha256$`, `$pbkdf2-sha512$`: PBKDF2 in the PHC format.
    Pbkdf2,
    /// `$1$`: MD5 crypt, accepted with a warning (fast to guess).
    Md5Crypt,
}

impl Scheme {
    /// What kind of hash `hash` is; plain text, unsalted digests and
    /// unknown formats are refused with a reason.
    pub fn of(hash: &str) -> Result<Scheme, String> {
        let supported = "argon2id (`portcullis hash-password`), bcrypt ($2b$), SHA-512 or SHA-256 crypt ($6$, $5$), PBKDF2 in the PHC format ($pbkdf2-sha256$) or MD5 crypt ($1$); plain text and unsalted hashes are refused";
        let fields: Vec<&str> = hash.split('$').collect();
        let scheme = match fields.get(1).copied() {
            Some(id) if id.starts_with("argon2") => Scheme::Argon2,
            Some("2a" | "2b" | "2y") => Scheme::Bcrypt,
            Some("6") => Scheme::Sha512Crypt,
            Some("5") => Scheme::Sha256Crypt,
            Some("pbkdf2-sha256" | "pbkdf2-sha512") => Scheme::Pbkdf2,
            Some("1") => Scheme::Md5Crypt,
            Some("y") => {
                return Err(format!(
                    "yescrypt ($y$) cannot be checked by this version; use {supported}"
                ))
            }
            _ if hash.starts_with('$') => return Err(format!("an unknown hash; use {supported}")),
            _ => return Err(format!("not a salted hash; use {supported}")),
        };
        let well_formed = match scheme {
            Scheme::Argon2 | Scheme::Pbkdf2 => {
                PasswordHash::new(hash).is_ok_and(|h| h.salt.is_some() && h.hash.is_some())
            }
            // $2b$cost$ and 22 characters of salt and 31 of hash.
            Scheme::Bcrypt => {
                fields.len() == 4 && fields[2].parse::<u32>().is_ok() && fields[3].len() == 53
            }
            // $id$[rounds=N$]salt$hash, with a salt.
            Scheme::Sha512Crypt | Scheme::Sha256Crypt | Scheme::Md5Crypt => {
                let rest = &fields[2..];
                let rest = match rest.first() {
                    Some(r) if r.starts_with("rounds=") && scheme != Scheme::Md5Crypt => &rest[1..],
                    _ => rest,
                };
                rest.len() == 2 && !rest[0].is_empty() && !rest[1].is_empty()
            }
        };
        if well_formed {
            Ok(scheme)
        } else {
            Err(format!("a malformed {scheme:?} hash"))
        }
    }
}

/// The blocks a PHC string's check needs (0 if it is not argon2).
pub fn blocks_needed(hash: &str) -> usize {
    PasswordHash::new(hash)
        .ok()
        .and_then(|h| Params::try_from(&h).ok())
        .map_or(0, |p| p.block_count())
}

/// A check's work in KiB of memory x passes; 0 for a string that is not
/// a hash (its check fails at once); the most for the other schemes, made
/// costly by design and always checked on the threads.
fn work(hash: &str) -> u64 {
    match Scheme::of(hash) {
        Ok(Scheme::Argon2) => PasswordHash::new(hash)
            .ok()
            .and_then(|h| Params::try_from(&h).ok())
            .map_or(0, |p| p.block_count() as u64 * u64::from(p.t_cost())),
        Ok(_) => u64::MAX,
        Err(_) => 0,
    }
}

/// Verify `password` against `hash` of any [`Scheme`] (argon2 in `blocks`,
/// grown to the hash's memory cost when needed).
fn verify_with(hash: &str, password: &str, blocks: &mut Vec<Block>) -> bool {
    match Scheme::of(hash) {
        Ok(Scheme::Argon2) => verify_argon2(hash, password, blocks),
        Ok(Scheme::Bcrypt) => bcrypt::verify(password, hash).unwrap_or(false),
        Ok(Scheme::Sha512Crypt) => sha_crypt::sha512_check(password, hash).is_ok(),
        Ok(Scheme::Sha256Crypt) => sha_crypt::sha256_check(password, hash).is_ok(),
        Ok(Scheme::Pbkdf2) => {
            use pbkdf2::password_hash::PasswordVerifier;
            PasswordHash::new(hash).is_ok_and(|h| {
                pbkdf2::Pbkdf2
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        }
        Ok(Scheme::Md5Crypt) => pwhash::md5_crypt::verify(password, hash),
        Err(_) => false,
    }
}

fn verify_argon2(hash: &str, password: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(h) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(alg), Ok(params)) = (Algorithm::try_from(h.algorithm), Params::try_from(&h)) else {
        return false;
    };
    let version = match h.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let need = params.block_count();
    if blocks.len() < need {
        blocks.resize(need, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(alg, version, params);
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..need])
        .is_err()
    {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_like_the_argon2_crate() {
        let h = Hasher::new(2, 0);
        let hash = crate::auth::users::hash_password("right");
        assert_eq!(h.verify(hash.clone(), "right".into()).await, Ok(true));
        assert_eq!(h.verify(hash.clone(), "wrong".into()).await, Ok(false));
        assert_eq!(h.verify("not a hash".into(), "x".into()).await, Ok(false));
        // Other parameters (cheaper) in the same thread's memory.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert_eq!(h.verify(cheap.clone(), "pw".into()).await, Ok(true));
        assert_eq!(h.verify(cheap, "pW".into()).await, Ok(false));
    }
}

#[cfg(test)]
mod scheme_tests {
    use super::*;

    /// Made by the system's libcrypt and Python's hashlib, not by the
    /// crates checking them (the SHA-512 one is the reference vector of
    /// the SHA-crypt specification), with their passwords.
    const VECTORS: &[(&str, &str, Scheme)] = &[
        (
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
            "Hello world!",
            Scheme::Sha512Crypt,
        ),
        (
            "$6$rounds=1000$pepper$n1/5pqnLw17l1NQkDukwxUdzcQf.WTAaDtMCxOi0Q5VQIPxMGUfHu4kkBLvVlac2nm004yK9FyZh41ASqUZ9U/",
            "portcullis",
            Scheme::Sha512Crypt,
        ),
        (
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
            "Hello world!",
            Scheme::Sha256Crypt,
        ),
        (
            "$2b$04$abcdefghijklmnopqrstuuPNYwVOe4IPqHSbsUSH0.F4me0N.1dxC",
            "portcullis",
            Scheme::Bcrypt,
        ),
        (
            "$pbkdf2-sha256$i=1000,l=32$c2FsdHlzYWx0eXNhbHQhIQ$NH/2saZYWDfQWoMgw48/0CJenjAxO/IqfwWodgdo/aw",
            "portcullis",
            Scheme::Pbkdf2,
        ),
        ("$1$abcdefgh$y4zchvpz5BpIro6mZ46ji/", "portcullis", Scheme::Md5Crypt),
    ];

    #[tokio::test]
    async fn migrated_hashes_verify_on_the_threads() {
        let h = Hasher::new(1, 0);
        for (hash, password, scheme) in VECTORS {
            assert_eq!(Scheme::of(hash), Ok(*scheme), "{hash}");
            assert_eq!(work(hash), u64::MAX, "{hash} goes to a thread");
            assert_eq!(
                h.verify(hash.to_string(), password.to_string()).await,
                Ok(true),
                "{hash}"
            );
            let wrong = format!("{password}x");
            assert_eq!(h.verify(hash.to_string(), wrong).await, Ok(false), "{hash}");
        }
        // A threadless hasher cannot check them: they are not inline.
        let (jobs, _) = mpsc::channel();
        let none = Hasher { jobs };
        assert!(none
            .verify(VECTORS[0].0.into(), "Hello world!".into())
            .await
            .is_err());
    }

    #[test]
    fn plain_unsalted_unknown_and_malformed_hashes_are_refused() {
        for bad in [
            "hunter2",
            "5f4dcc3b5aa765d61d8327deb882cf99", // unsalted MD5
            "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
            "$y$j9T$salt$hash",
            "$3$whatever",
            "$6$$nosalt",
            "$6$salt",
            "$2b$04$short",
            "$pbkdf2-sha256$garbage",
            "",
        ] {
            assert!(Scheme::of(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Scheme::of("$y$j9T$salt$hash")
            .unwrap_err()
            .contains("yescrypt"));
        assert!(Scheme::of("hunter2")
            .unwrap_err()
            .contains("not a salted hash"));
        let argon = crate::auth::users::hash_password_with("pw", 8, 1).unwrap();
        assert_eq!(Scheme::of(&argon), Ok(Scheme::Argon2));
    }
}

#[cfg(test)]
mod inline_tests {
    use super::*;

    /// A hasher whose threads are gone: only inline checks can answer.
    fn threadless() -> Hasher {
        let (jobs, _) = mpsc::channel();
        Hasher { jobs }
    }

    #[tokio::test]
    async fn cheap_hashes_are_checked_inline_and_costly_ones_on_the_threads() {
        let h = threadless();
        let cheap = crate::auth::users::hash_password_with("pw", 8, 1).unwrap();
        assert_eq!(work(&cheap), 8);
        assert_eq!(h.verify(cheap.clone(), "pw".into()).await, Ok(true));
        assert_eq!(h.verify(cheap, "pW".into()).await, Ok(false));
        let limit = crate::auth::users::hash_password_with("pw", 32, 2).unwrap();
        assert_eq!(work(&limit), INLINE_WORK);
        assert_eq!(h.verify(limit, "pw".into()).await, Ok(true));
        // Past the limit (argon2 rounds memory to whole sync points of 4
        // blocks): sent to the (missing) threads.
        let costly = crate::auth::users::hash_password_with("pw", 68, 1).unwrap();
        assert_eq!(work(&costly), 68);
        assert!(h.verify(costly, "pw".into()).await.is_err());
        assert_eq!(h.verify("not a hash".into(), "x".into()).await, Ok(false));
    }
}
