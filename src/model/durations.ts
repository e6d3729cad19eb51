// Durations as the model keeps them: milliseconds as a number. Users write them in Envoy's form
// (`500ms`, `1.5s`, `5m`, `1h`) in annotations and on the command line; translate formats them back into
// the proto JSON form Envoy resources carry.

/**
 * The longest duration Envoy takes: it keeps durations as signed 64-bit nanoseconds, and refuses
 * 9223372036s and beyond ("Duration out-of-range", measured with envoy --mode validate on 1.40), well
 * inside google.protobuf.Duration's own 315576000000s.
 */
const maxDurationSeconds = 9_223_372_035n;
const nanosPerSecond = 1_000_000_000n;
const nanosPerMilli = 1_000_000n;
const durationText = /^(\d+)(?:\.(\d+))?(ms|s|m|h)$/;
const nanosPerUnit = { ms: nanosPerMilli, s: nanosPerSecond, m: 60n * nanosPerSecond, h: 3600n * nanosPerSecond };

/** An Envoy-style duration (`500ms`, `1.5s`, `5m`, `1h`) as exact nanoseconds, or why it is not one. */
function parseDurationNanos(text: string): { nanos: bigint } | { error: string } {
  const m = durationText.exec(text.trim());
  if (!m) return { error: `${JSON.stringify(text)} is not a duration like 500ms, 1s, 5m or 1h` };
  type Unit = keyof typeof nanosPerUnit;
  const [, whole, fraction = '', unit] = m as unknown as [string, string, string | undefined, Unit];
  const scale = 10n ** BigInt(fraction.length);
  const scaled = (BigInt(whole) * scale + BigInt(fraction || '0')) * nanosPerUnit[unit];
  if (scaled % scale !== 0n) {
    return { error: `${JSON.stringify(text)} is finer than a nanosecond, which a protobuf Duration cannot hold` };
  }
  const nanos = scaled / scale;
  if (nanos >= (maxDurationSeconds + 1n) * nanosPerSecond) {
    const limit = `under ${maxDurationSeconds + 1n}s, about 292 years`;
    return { error: `${JSON.stringify(text)} is longer than Envoy accepts (${limit})` };
  }
  return { nanos };
}

/** The exact nanoseconds a number of milliseconds stands for (to the nanosecond, as Envoy keeps them). */
export function nanosOfMillis(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * nanosPerMilli + BigInt(Math.round((ms - whole) * 1e6));
}

/**
 * An Envoy-style duration in milliseconds, or why it is not one. Whole milliseconds are exact at any
 * length Envoy takes; a fraction is kept to the nanosecond where a number holds it exactly (always below 49
 * days), and a value it would round is refused rather than served as something else.
 */
export function parseDurationMs(text: string): { ms: number } | { error: string } {
  const parsed = parseDurationNanos(text);
  if ('error' in parsed) return parsed;
  const ms = Number(parsed.nanos / nanosPerMilli) + Number(parsed.nanos % nanosPerMilli) / 1e6;
  if (nanosOfMillis(ms) !== parsed.nanos) {
    return { error: `${JSON.stringify(text)} is too precise for its length; round it to whole milliseconds` };
  }
  return { ms };
}
