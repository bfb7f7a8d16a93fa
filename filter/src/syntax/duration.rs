//! Durations as users write them: `500ms`, `10s`, `15m`, `1h`, `1d`.

use std::time::Duration;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration (a whole number and a unit: 500ms, 10s, 15m, 1h, 1d)")
    })?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{text}`: the unit must be ms, s, m, h or d")),
    };
    let millis = n
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("`{text}` is too long"))?;
    if millis == 0 {
        return Err(format!("`{text}` is zero"));
    }
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
    }

    #[test]
    fn refusals() {
        assert_eq!(parse_duration("0s"), Err("`0s` is zero".into()));
        assert_eq!(
            parse_duration("15"),
            Err("`15`: the unit must be ms, s, m, h or d".into())
        );
        assert_eq!(
            parse_duration("1.5s"),
            Err("`1.5s`: the unit must be ms, s, m, h or d".into())
        );
        assert_eq!(
            parse_duration("m"),
            Err(
                "`m` is not a duration (a whole number and a unit: 500ms, 10s, 15m, 1h, 1d)".into()
            )
        );
        assert_eq!(
            parse_duration("99999999999999999d"),
            Err("`99999999999999999d` is too long".into())
        );
    }
}
