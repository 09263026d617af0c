//! Encrypting a backup to the organization's `age` public key and decrypting it with the matching
//! identity, streaming (a backup may be larger than memory).

use std::io::{BufReader, BufWriter, Write as _};
use std::path::Path;

use super::{BackupError, io_error};

/// Parses an `age1…` public key.
pub fn parse_recipient(raw: &str) -> Result<age::x25519::Recipient, String> {
    raw.trim()
        .parse::<age::x25519::Recipient>()
        .map_err(|e| format!("not an age public key (age1…): {e}"))
}

/// Encrypts `plain` into `out` (created, must not exist).
pub fn encrypt_file(plain: &Path, out: &Path, recipient: &age::x25519::Recipient) -> Result<(), BackupError> {
    let mut input = BufReader::new(
        std::fs::File::open(plain).map_err(io_error(format!("cannot open {}", plain.display())))?,
    );
    let file = create_new(out)?;
    let encryptor = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
        .map_err(|e| BackupError::Age(e.to_string()))?;
    let mut writer = encryptor
        .wrap_output(BufWriter::new(file))
        .map_err(io_error("cannot start the encrypted file"))?;
    std::io::copy(&mut input, &mut writer).map_err(io_error("cannot encrypt the backup"))?;
    let mut inner = writer
        .finish()
        .map_err(io_error("cannot finish the encrypted file"))?;
    inner.flush().map_err(io_error("cannot write the encrypted file"))
}

/// Decrypts `encrypted` into `out` with the identities in `identity_file`.
pub fn decrypt_file(encrypted: &Path, out: &Path, identity_file: &Path) -> Result<(), BackupError> {
    let identities = age::IdentityFile::from_file(identity_file.display().to_string())
        .map_err(io_error(format!(
            "cannot read the identity file {}",
            identity_file.display()
        )))?
        .into_identities()
        .map_err(|e| BackupError::Age(format!("the identity file: {e}")))?;
    let input = BufReader::new(
        std::fs::File::open(encrypted).map_err(io_error(format!("cannot open {}", encrypted.display())))?,
    );
    let decryptor = age::Decryptor::new_buffered(input).map_err(|e| BackupError::Age(e.to_string()))?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| BackupError::Age(format!("cannot decrypt (wrong identity?): {e}")))?;
    let mut output = BufWriter::new(create_new(out)?);
    std::io::copy(&mut reader, &mut output).map_err(io_error("cannot decrypt the backup"))?;
    output
        .flush()
        .map_err(io_error("cannot write the decrypted copy"))
}

fn create_new(path: &Path) -> Result<std::fs::File, BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(io_error(format!("cannot create {}", path.display())))
}
