//! A tiny XML writer for TwiML, Africa's Talking XML and FreeSWITCH httapi documents.
//!
//! All text and attribute values pass through [`escape_text`] / [`escape_attr`], which escape the
//! markup characters, encode line breaks and tabs as character references (so attribute-value
//! normalisation cannot change them) and drop the characters XML 1.0 cannot carry at all (most
//! C0 controls, lone surrogates cannot occur in Rust strings, U+FFFE and U+FFFF).

/// Whether XML 1.0 can carry `c` (escaped or not).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// `text` with every character XML cannot carry removed: what a parser will read back.
pub fn xml_representable(text: &str) -> String {
    text.chars().filter(|c| is_xml_char(*c)).collect()
}

pub(crate) fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

pub(crate) fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

/// Builds a document element by element. Element and attribute names are static and trusted.
pub(crate) struct XmlWriter {
    out: String,
    stack: Vec<&'static str>,
}

impl XmlWriter {
    pub(crate) fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            stack: Vec::new(),
        }
    }

    fn start(&mut self, name: &'static str, attrs: &[(&'static str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_attr(v, &mut self.out);
            self.out.push('"');
        }
    }

    pub(crate) fn open(&mut self, name: &'static str, attrs: &[(&'static str, &str)]) {
        self.start(name, attrs);
        self.out.push('>');
        self.stack.push(name);
    }

    pub(crate) fn empty(&mut self, name: &'static str, attrs: &[(&'static str, &str)]) {
        self.start(name, attrs);
        self.out.push_str("/>");
    }

    pub(crate) fn text_element(&mut self, name: &'static str, attrs: &[(&'static str, &str)], text: &str) {
        self.start(name, attrs);
        self.out.push('>');
        escape_text(text, &mut self.out);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    pub(crate) fn close(&mut self) {
        if let Some(name) = self.stack.pop() {
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
    }

    pub(crate) fn finish(mut self) -> String {
        while !self.stack.is_empty() {
            self.close();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut w = XmlWriter::new();
        w.open("Response", &[]);
        w.text_element("Say", &[("language", "a\"b'<&\n")], "x<y & z\u{0}\r");
        w.close();
        let s = w.finish();
        assert!(s.ends_with(
            "<Response><Say language=\"a&quot;b&apos;&lt;&amp;&#10;\">x&lt;y &amp; z&#13;</Say></Response>"
        ));
    }
}
