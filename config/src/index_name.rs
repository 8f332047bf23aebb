//! Index names from a template: `logs-{kubernetes.namespace}-%Y.%m.%d`, parsed once; the indexer renders them.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Field(String),
    Year,
    Month,
    Day,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexName(Vec<Part>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexNameError {
    #[error("unclosed '{{' in index name template")]
    Unclosed,
    #[error("unknown date code %{0} (use %Y, %m, %d)")]
    DateCode(char),
    #[error("empty index name template")]
    Empty,
}

impl IndexName {
    pub fn parse(template: &str) -> Result<Self, IndexNameError> {
        let mut parts = Vec::new();
        let mut chars = template.chars();
        let mut text = String::new();
        while let Some(c) = chars.next() {
            let part = match c {
                '{' => {
                    let mut field = String::new();
                    loop {
                        match chars.next() {
                            Some('}') if !field.is_empty() => break,
                            Some('}') | None => return Err(IndexNameError::Unclosed),
                            Some(c) => field.push(c),
                        }
                    }
                    Part::Field(field)
                }
                '%' => match chars.next() {
                    Some('Y') => Part::Year,
                    Some('m') => Part::Month,
                    Some('d') => Part::Day,
                    Some(other) => return Err(IndexNameError::DateCode(other)),
                    None => return Err(IndexNameError::DateCode(' ')),
                },
                c => {
                    text.push(c);
                    continue;
                }
            };
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text).to_lowercase()));
            }
            parts.push(part);
        }
        if !text.is_empty() {
            parts.push(Part::Text(text.to_lowercase()));
        }
        if parts.is_empty() {
            return Err(IndexNameError::Empty);
        }
        Ok(Self(parts))
    }

    /// The literal text, fields and date codes, in order.
    pub fn parts(&self) -> &[Part] {
        &self.0
    }

    /// The fields the name is made of.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| if let Part::Field(f) = p { Some(f.as_str()) } else { None })
    }

    /// The text before the first field or date code, then `*`: the pattern an index template matches.
    pub fn pattern(&self) -> String {
        let prefix: String =
            self.0.iter().map_while(|p| if let Part::Text(t) = p { Some(t.as_str()) } else { None }).collect();
        format!("{prefix}*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_and_patterns() {
        assert_eq!(IndexName::parse("logs-{ns"), Err(IndexNameError::Unclosed));
        assert_eq!(IndexName::parse("logs-%H"), Err(IndexNameError::DateCode('H')));
        assert_eq!(IndexName::parse(""), Err(IndexNameError::Empty));
        assert_eq!(IndexName::parse("logs-{}"), Err(IndexNameError::Unclosed));
        assert_eq!(IndexName::parse("logs-{a}-%Y.%m.%d").unwrap().pattern(), "logs-*");
        assert_eq!(IndexName::parse("{a}").unwrap().pattern(), "*");
        let name = IndexName::parse("x-{a.b}-{c}").unwrap();
        let fields: Vec<&str> = name.fields().collect();
        assert_eq!(fields, ["a.b", "c"]);
    }
}
