// Regenerates the golden MSK IAM tokens with AWS's official signer
// (aws-msk-iam-sasl-signer-js, pinned in package.json/package-lock.json).
//
//   cd crates/auth/tests/golden && npm ci && node generate.mjs
//
// Every input is fixed: credentials, region and the signing time. The signer
// reads the clock through `new Date()` / `Date.now()`, so both are pinned to
// the case's time while it signs.
import { writeFileSync } from "node:fs";
import { generateAuthTokenFromCredentialsProvider } from "aws-msk-iam-sasl-signer-js";

const cases = [
  {
    name: "long_term_keys",
    region: "us-east-1",
    time: "2026-01-02T03:04:05Z",
    access_key_id: "AKIDEXAMPLE",
    secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  },
  {
    name: "session_token",
    region: "eu-west-1",
    time: "2026-12-07T09:30:00Z",
    access_key_id: "ASIAEXAMPLE0SESSION1",
    secret_access_key: "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    session_token:
      "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+session/token=with+specials==",
  },
  {
    // Credentials that expire in 300 s: the token lives as long as they do.
    name: "expiring_credentials",
    region: "ap-southeast-2",
    time: "2026-06-30T23:59:59Z",
    access_key_id: "ASIAEXPIRING00000001",
    secret_access_key: "expiring/secret+key=0123456789abcdefghij",
    session_token: "FwoGZXIvYXdzEXAMPLEexpiringSessionToken",
    expiration: "2026-07-01T00:04:59Z",
  },
  {
    name: "gov_cloud_region",
    region: "us-gov-west-1",
    time: "2026-02-28T12:00:00Z",
    access_key_id: "AKIAGOVEXAMPLE000001",
    secret_access_key: "govcloud0secret0key0example0000000000000",
  },
];

const RealDate = Date;
function pinClock(iso) {
  const fixed = RealDate.parse(iso);
  class FixedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(fixed);
      else super(...args);
    }
    static now() {
      return fixed;
    }
  }
  globalThis.Date = FixedDate;
}

const here = new URL(".", import.meta.url);
for (const c of cases) {
  pinClock(c.time);
  try {
    const credentials = {
      accessKeyId: c.access_key_id,
      secretAccessKey: c.secret_access_key,
      ...(c.session_token ? { sessionToken: c.session_token } : {}),
      ...(c.expiration ? { expiration: new RealDate(c.expiration) } : {}),
    };
    const { token, expiryTime } = await generateAuthTokenFromCredentialsProvider({
      region: c.region,
      awsCredentialsProvider: async () => credentials,
    });
    const url = Buffer.from(token, "base64url").toString("utf-8");
    const userAgent = new URL(url).searchParams.get("User-Agent");
    const golden = { ...c, user_agent: userAgent, token, expiry_ms: expiryTime, url };
    writeFileSync(new URL(`${c.name}.json`, here), JSON.stringify(golden, null, 2) + "\n");
    console.log(`${c.name}.json`);
  } finally {
    globalThis.Date = RealDate;
  }
}
