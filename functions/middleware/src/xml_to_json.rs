//! `xml-to-json`: turns an upstream XML response into JSON, in
//! `handle_response` (with buffer_response).
//!
//! Applies to responses whose media type is `application/xml`, `text/xml`
//! or `application/*+xml` (parameters such as `charset` ignored); other
//! responses pass untouched. The mapping:
//!
//! - the document becomes `{"<root name>": <root value>}`;
//! - an element with neither attributes nor child elements becomes its text,
//!   whitespace-trimmed (`""` when empty) — always a string, never a number;
//! - any other element becomes an object: each attribute as `"@name"`, each
//!   child element under its name in document order — a name that occurs
//!   more than once becomes an array of the values in order — and its
//!   non-blank text (trimmed, text and CDATA pieces concatenated) as
//!   `"#text"`;
//! - names keep their namespace prefix as written (`soap:Body`); namespace
//!   declarations, comments and processing instructions are dropped.
//!
//! The converted response is `application/json` with the same status. XML
//! that is malformed, not UTF-8, or has a DOCTYPE (refused: no entity
//! expansion) is answered 502 `{"error":"bad-upstream-xml","reason":…}`:
//! the upstream broke its contract, and the client never gets half a
//! conversion.
//!
//! Config: none (an empty object).

use crate::Reject;
use crate::config::{self, Config};
use roxmltree::{Document, Node};

const NAME: &str = "xml-to-json";

/// The (empty) configuration.
#[derive(Debug)]
pub struct XmlToJson;

impl XmlToJson {
    /// Parses the `get_config` payload (must be empty or `{}`).
    pub fn from_config(bytes: &[u8]) -> Result<XmlToJson, Reject> {
        let parsed = config::parse(bytes).and_then(|v| Config::new(&v, &[]).map(|_| ()));
        parsed
            .map(|()| XmlToJson)
            .map_err(|e| Reject::misconfigured(NAME, &e))
    }
}

/// Whether a `Content-Type` value names XML.
pub fn is_xml(content_type: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(content_type) else {
        return false;
    };
    let media = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/xml"
        || media == "text/xml"
        || (media.starts_with("application/") && media.ends_with("+xml"))
}

/// Deepest element nesting converted. The conversion recurses once per
/// level on the guest's 32 KiB stack (a deeper document would trap, still
/// a 502 but without the reason); 128 levels leave a wide margin.
pub const MAX_DEPTH: usize = 128;

/// Converts an XML document to compact JSON; `Err` is the 502 answer.
pub fn convert(xml: &[u8]) -> Result<String, Reject> {
    let bad = |reason: String| Reject::new(502, "bad-upstream-xml", reason);
    let text = std::str::from_utf8(xml).map_err(|_| bad("upstream XML is not UTF-8".into()))?;
    let doc = Document::parse(text).map_err(|e| bad(format!("malformed upstream XML: {e}")))?;
    if depth(&doc) > MAX_DEPTH {
        return Err(bad(format!(
            "upstream XML nests elements deeper than {MAX_DEPTH} levels"
        )));
    }
    let root = doc.root_element();
    let mut out = String::from("{");
    push_string(&mut out, &qualified_name(root));
    out.push(':');
    push_element(&mut out, root);
    out.push('}');
    Ok(out)
}

/// The deepest element nesting of `doc` (the root element is 1), without
/// recursion: each node's depth is its parent's plus one, in document order.
fn depth(doc: &Document) -> usize {
    let mut depths = vec![0usize; doc.descendants().count()];
    let mut deepest = 0;
    for node in doc.descendants() {
        let parent = node.parent().map_or(0, |p| depths[p.id().get_usize()]);
        let d = parent + usize::from(node.is_element());
        depths[node.id().get_usize()] = d;
        deepest = deepest.max(d);
    }
    deepest
}

fn qualified_name(node: Node) -> String {
    let name = node.tag_name();
    match name.namespace().and_then(|uri| node.lookup_prefix(uri)) {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}:{}", name.name()),
        _ => name.name().to_string(),
    }
}

fn push_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

fn push_element(out: &mut String, node: Node) {
    let text: String = node
        .children()
        .filter(Node::is_text)
        .filter_map(|n| n.text())
        .collect();
    let text = text.trim();
    let children: Vec<Node> = node.children().filter(Node::is_element).collect();
    let attributes: Vec<_> = node.attributes().collect();
    if children.is_empty() && attributes.is_empty() {
        return push_string(out, text);
    }
    out.push('{');
    let mut first = true;
    let mut key = |out: &mut String, name: &str| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        push_string(out, name);
        out.push(':');
    };
    for attribute in attributes {
        let name = match attribute
            .namespace()
            .and_then(|uri| node.lookup_prefix(uri))
        {
            Some(prefix) if !prefix.is_empty() => format!("@{prefix}:{}", attribute.name()),
            _ => format!("@{}", attribute.name()),
        };
        key(out, &name);
        push_string(out, attribute.value());
    }
    let names: Vec<String> = children.iter().map(|c| qualified_name(*c)).collect();
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            continue; // already written with its first occurrence
        }
        key(out, name);
        let same: Vec<Node> = children
            .iter()
            .zip(&names)
            .filter(|(_, n)| *n == name)
            .map(|(c, _)| *c)
            .collect();
        if let [only] = same[..] {
            push_element(out, only);
        } else {
            out.push('[');
            for (j, child) in same.into_iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                push_element(out, child);
            }
            out.push(']');
        }
    }
    if !text.is_empty() {
        key(out, "#text");
        push_string(out, text);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn conv(xml: &str) -> Value {
        serde_json::from_str(&convert(xml.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn elements_attributes_repeats_and_text_follow_the_documented_mapping() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment -->
            <order id="A1" status="open">
              <customer>Ada &amp; Co</customer>
              <item sku="x1">Bolt</item>
              <item sku="x2"><![CDATA[Nut <M6>]]></item>
              <empty/>
              <total currency="EUR">12.50</total>
              <note>  padded  </note>
            </order>"#;
        assert_eq!(
            conv(xml),
            json!({ "order": {
                "@id": "A1", "@status": "open",
                "customer": "Ada & Co",
                "item": [ { "@sku": "x1", "#text": "Bolt" }, { "@sku": "x2", "#text": "Nut <M6>" } ],
                "empty": "",
                "total": { "@currency": "EUR", "#text": "12.50" },
                "note": "padded"
            }})
        );
        // Document order is kept in the output text, not sorted.
        let out = convert(b"<r><b>1</b><a>2</a><b>3</b></r>").unwrap();
        assert_eq!(out, r#"{"r":{"b":["1","3"],"a":"2"}}"#);
        assert_eq!(conv("<r/>"), json!({ "r": "" }));
        assert_eq!(
            conv("<r>x<a>1</a>y</r>"),
            json!({ "r": { "a": "1", "#text": "xy" } })
        );
    }

    #[test]
    fn namespace_prefixes_are_kept_and_declarations_dropped() {
        let xml = r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:m="urn:m">
            <soap:Body><m:Price m:unit="kg">3</m:Price></soap:Body></soap:Envelope>"#;
        assert_eq!(
            conv(xml),
            json!({ "soap:Envelope": { "soap:Body": { "m:Price": { "@m:unit": "kg", "#text": "3" } } } })
        );
    }

    #[test]
    fn malformed_non_utf8_and_doctype_xml_are_502() {
        for bad in [
            &b"<a><b></a>"[..],
            b"not xml",
            b"",
            b"<a>\xff</a>",
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
        ] {
            let r = convert(bad).unwrap_err();
            assert_eq!(r.status, 502);
            assert_eq!(r.body["error"], "bad-upstream-xml");
            assert!(r.body["reason"].as_str().unwrap().contains("XML"));
        }
    }

    #[test]
    fn nesting_deeper_than_max_depth_is_502() {
        let nested = |d: usize| format!("{}{}", "<a>".repeat(d), "</a>".repeat(d));
        assert!(convert(nested(MAX_DEPTH).as_bytes()).is_ok());
        let r = convert(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!(r.status, 502);
        assert_eq!(
            r.body["reason"],
            "upstream XML nests elements deeper than 128 levels"
        );
    }

    #[test]
    fn only_xml_media_types_are_converted() {
        for yes in [
            &b"application/xml"[..],
            b"text/xml; charset=utf-8",
            b"Application/XML",
            b"application/atom+xml",
        ] {
            assert!(is_xml(yes), "{yes:?}");
        }
        for no in [
            &b"application/json"[..],
            b"text/html",
            b"xml",
            b"",
            b"application/xml-dtd",
        ] {
            assert!(!is_xml(no), "{no:?}");
        }
    }

    #[test]
    fn config_must_be_empty() {
        assert!(XmlToJson::from_config(b"").is_ok());
        assert!(XmlToJson::from_config(b"{}").is_ok());
        assert_eq!(
            XmlToJson::from_config(br#"{"x":1}"#).unwrap_err().status,
            500
        );
    }
}
