//! GSM 03.38 default alphabet: decoding unpacked septets (Jasmin `coding=0`) and checking
//! whether a text fits in 7-bit SMS.

const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Decodes one septet per byte. Bytes ≥ 0x80 are not GSM: they are read as Latin-1, since some
/// gateways pass 8-bit text through with `coding=0`.
pub(crate) fn decode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0x1B {
            if let Some((_, c)) = bytes
                .get(i + 1)
                .and_then(|next| EXTENSION.iter().find(|(code, _)| code == next))
            {
                out.push(*c);
                i += 2;
                continue;
            }
            out.push(' ');
            i += 1;
            continue;
        }
        match BASIC.get(usize::from(b)) {
            Some(c) => out.push(*c),
            None => out.push(char::from(b)),
        }
        i += 1;
    }
    out
}

/// Whether `c` can be sent in the GSM 7-bit alphabet.
pub(crate) fn encodes(c: char) -> bool {
    c != '\u{1B}' && (BASIC.contains(&c) || EXTENSION.iter().any(|(_, e)| *e == c))
}

/// UCS-2 / UTF-16 big-endian, lossy.
pub(crate) fn decode_ucs2(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// ISO-8859-1.
pub(crate) fn decode_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|b| char::from(*b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(decode(b"\x05v\x05nement"), "événement");
        assert_eq!(decode(b"\x1b\x65 5"), "€ 5");
        assert_eq!(decode_ucs2(&[0x04, 0x1F, 0x04, 0x40]), "Пр");
        assert!(encodes('é') && encodes('€') && !encodes('П'));
    }
}
