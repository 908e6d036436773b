#!/usr/bin/env python3
"""A stripe402 server in Python, standard library only, written from spec/ and
schemas/ alone (see README.md). It sells two paid routes, GET /api/joke and
GET /api/fail (whose handler always answers 500), at the prices given on the
command line, keeps its ledger in SQLite, and talks to Stripe (or a Stripe
emulator) over Stripe's form-encoded HTTP API.

Usage:
  STRIPE402_SERVER_SECRET=... python3 server.py --port 0 \
      --stripe-url http://127.0.0.1:12111 --stripe-key sk_test_... \
      --publishable-key pk_test_... --offer usd:100:50000:1000000 [--offer jpy:10000:1000000]

Each --offer is currency:amount:minTopUp[:maxTopUp], in units (1/10,000 of
the currency's major unit); the first is the default (MSG-11). On start the
server prints one line, `listening http://127.0.0.1:PORT`, to stdout.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import sqlite3
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_UNITS = 2**53 - 1
MAX_STRIPE_CHARGE = 99_999_999
PAID_ROUTES = {
    '/api/joke': {'description': 'A paid joke', 'mimeType': 'application/json', 'fails': False},
    '/api/fail': {'description': 'A route whose handler always fails', 'mimeType': 'application/json', 'fails': True},
}

# Section 5.2, Table 5.2: Stripe's decimal places per currency.
ZERO_DECIMAL = {'bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf'}
THREE_DECIMAL = {'bhd', 'jod', 'kwd', 'omr', 'tnd'}


def exponent(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def charge_step(currency: str) -> int:
    """Table 5.5: the multiple a charge must be of, in the smallest unit."""
    if currency in THREE_DECIMAL:
        return 10
    if currency == 'isk':
        return 100
    return 1


def charge_for(units: int, currency: str) -> int:
    """UNIT-2: ceil(u * 10^e / 10^4), in exact integer arithmetic."""
    return (units * 10 ** exponent(currency) + 9999) // 10000


# Fixed messages per error code (ERR-4): nothing from a library, a driver or Stripe.
MESSAGES = {
    'invalid_payment': 'The payment header is not a valid payment for this resource.',
    'unsupported_version': 'This server speaks stripe402 version 1 only.',
    'currency_not_accepted': 'This resource is not sold in the requested currency.',
    'insufficient_credits': 'The balance does not cover this request.',
    'top_up_below_minimum': 'The top-up amount is below the minimum for this resource.',
    'top_up_above_maximum': 'The top-up amount is above the maximum for this resource.',
    'card_declined': 'The card was declined.',
    'authentication_required': 'The card issuer asks the card holder to authenticate this payment.',
    'payment_failed': 'The payment did not succeed.',
}

JOKE = {'joke': 'Why did the API cross the road? To get to the other 402.'}


class PaymentError(Exception):
    def __init__(self, code: str, extra: dict | None = None):
        super().__init__(code)
        self.code = code
        self.extra = extra or {}


class StripeUnavailable(Exception):
    """Stripe could not be reached, or the outcome is unknown (ERR-9)."""


# ---------------------------------------------------------------- decoding (Section 3.3)

STD_CHARS = set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789')
PM_RE = re.compile(r'pm_[A-Za-z0-9_]+')
PI_RE = re.compile(r'pi_[A-Za-z0-9_]+')
CID_RE = re.compile(r'[0-9a-f]{64}')
KEY_RE = re.compile(r'[A-Za-z0-9_-]{16,128}')
CUR_RE = re.compile(r'[a-z]{3}')


class Invalid(Exception):
    pass


# Set by --defect naive-json: the JSON reading a hurried Python server would have.
NAIVE_JSON = False


def _reject_constant(name: str):
    raise Invalid(f'not JSON: {name}')


def _pairs(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise Invalid('duplicate member')  # ENC-16: rejected, as the SHOULD asks
        obj[k] = v
    return obj


def decode_header_value(raw: str) -> dict:
    value = raw.strip(' \t')  # ENC-3
    if len(value) > 4096:  # ENC-8
        raise Invalid('too long')
    if not value:
        raise Invalid('empty')
    has_std = '+' in value or '/' in value
    has_url = '-' in value or '_' in value
    if has_std and has_url:  # ENC-4
        raise Invalid('two alphabets')
    allowed = STD_CHARS | (set('-_') if has_url else set('+/')) | {'='}
    if any(c not in allowed for c in value):  # ENC-5
        raise Invalid('character')
    first_pad = value.find('=')
    data = value if first_pad < 0 else value[:first_pad]
    if first_pad >= 0:
        padding = value[first_pad:]
        if padding.strip('=') or len(padding) > 2 or len(value) % 4:
            raise Invalid('padding')
    if len(data) % 4 == 1:
        raise Invalid('length')
    std = data.replace('-', '+').replace('_', '/')
    std += '=' * (-len(std) % 4)
    try:
        raw_bytes = base64.b64decode(std, validate=True)  # discards unused low bits (ENC-3)
    except (binascii.Error, ValueError) as exc:
        raise Invalid('base64') from exc
    if raw_bytes.startswith(b'\xef\xbb\xbf'):  # ENC-6
        raise Invalid('bom')
    try:
        text = raw_bytes.decode('utf-8', errors='strict')
    except UnicodeDecodeError as exc:
        raise Invalid('utf-8') from exc
    if NAIVE_JSON:
        # The deliberate defect: Python's defaults (NaN and Infinity read, RecursionError not caught).
        try:
            obj = json.loads(text, object_pairs_hook=_pairs)
        except ValueError as exc:
            raise Invalid('json') from exc
    else:
        try:
            obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_pairs)
        except Invalid:
            raise
        except (ValueError, RecursionError) as exc:  # ENC-7; deep nesting included
            raise Invalid('json') from exc
    if not isinstance(obj, dict):
        raise Invalid('not an object')
    return obj


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_payload(p: dict) -> None:
    """MSG-1 first, then the members of Table 4.5 (MSG-3, MSG-8, MSG-10, MSG-15, CID-3)."""
    if 'stripe402Version' not in p or not is_int(p['stripe402Version']):
        raise PaymentError('invalid_payment')
    if p['stripe402Version'] != 1:
        raise PaymentError('unsupported_version')

    def string_member(name, pattern, max_len=None):
        if name not in p:
            return
        v = p[name]
        if not isinstance(v, str) or not pattern.fullmatch(v) or (max_len is not None and len(v) > max_len):
            raise PaymentError('invalid_payment')

    string_member('paymentMethodId', PM_RE, 255)
    string_member('clientId', CID_RE)
    string_member('idempotencyKey', KEY_RE)
    string_member('paymentIntentId', PI_RE, 255)
    string_member('currency', CUR_RE)
    if 'topUpAmount' in p:
        v = p['topUpAmount']
        if not is_int(v) or v < 1 or v > MAX_UNITS:
            raise PaymentError('invalid_payment')
    if 'paymentMethodId' not in p and 'clientId' not in p:
        raise PaymentError('invalid_payment')


# ---------------------------------------------------------------- Stripe over HTTP

class Stripe:
    def __init__(self, base_url: str, secret_key: str):
        self.base = base_url.rstrip('/')
        self.key = secret_key

    @staticmethod
    def _form(params: dict, prefix: str = '') -> list:
        out = []
        for k, v in params.items():
            name = f'{prefix}[{k}]' if prefix else k
            if isinstance(v, dict):
                out.extend(Stripe._form(v, name))
            elif isinstance(v, list):
                for i, item in enumerate(v):
                    out.append((f'{name}[{i}]', str(item)))
            elif isinstance(v, bool):
                out.append((name, 'true' if v else 'false'))
            else:
                out.append((name, str(v)))
        return out

    def request(self, method: str, path: str, params: dict | None = None, idempotency_key: str | None = None):
        """(status, body) for 2xx and 4xx answers; StripeUnavailable for everything whose outcome is unknown."""
        data = urllib.parse.urlencode(self._form(params or {})).encode() if method == 'POST' else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header('Authorization', f'Bearer {self.key}')
        if data is not None:
            req.add_header('Content-Type', 'application/x-www-form-urlencoded')
        if idempotency_key:
            req.add_header('Idempotency-Key', idempotency_key)
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, json.loads(resp.read() or b'{}')
        except urllib.error.HTTPError as err:
            status = err.code
            try:
                body = json.loads(err.read() or b'{}')
            except ValueError:
                body = {}
            if status >= 500 or status == 429:
                raise StripeUnavailable() from None
            return status, body
        except (OSError, ValueError):
            raise StripeUnavailable() from None


# ---------------------------------------------------------------- ledger (Section 11)

class Ledger:
    """Balances, a journal, top-up records and idempotency records in one SQLite database.
    Every change runs in one transaction under one lock, so check-and-deduct is atomic (LEDG-1)
    and a PaymentIntent credits once (LEDG-4: unique key on the top-up's PaymentIntent id)."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.lock = threading.Lock()
        self.db.executescript(
            """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = FULL;
            CREATE TABLE IF NOT EXISTS balance (client_id TEXT, currency TEXT, units INTEGER NOT NULL,
                PRIMARY KEY (client_id, currency));
            CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, client_id TEXT, currency TEXT,
                kind TEXT, units INTEGER, ref TEXT);
            CREATE UNIQUE INDEX IF NOT EXISTS journal_topup ON journal (ref) WHERE kind = 'topup';
            CREATE TABLE IF NOT EXISTS idempotency (client_id TEXT, key TEXT, units INTEGER, currency TEXT,
                payment_intent TEXT, PRIMARY KEY (client_id, key));
            CREATE TABLE IF NOT EXISTS started (payment_intent TEXT PRIMARY KEY, client_id TEXT, currency TEXT, units INTEGER);
            """
        )

    def _tx(self, fn):
        with self.lock:
            self.db.execute('BEGIN IMMEDIATE')
            try:
                result = fn(self.db)
            except BaseException:
                self.db.execute('ROLLBACK')
                raise
            self.db.execute('COMMIT')
            return result

    @staticmethod
    def _get(db, cid, cur) -> int:
        row = db.execute('SELECT units FROM balance WHERE client_id = ? AND currency = ?', (cid, cur)).fetchone()
        return row[0] if row else 0

    @staticmethod
    def _add(db, cid, cur, delta, kind, ref):
        db.execute(
            'INSERT INTO balance (client_id, currency, units) VALUES (?, ?, ?) '
            'ON CONFLICT (client_id, currency) DO UPDATE SET units = units + excluded.units',
            (cid, cur, delta),
        )
        db.execute('INSERT INTO journal (client_id, currency, kind, units, ref) VALUES (?, ?, ?, ?, ?)', (cid, cur, kind, delta, ref))

    def balance(self, cid, cur) -> int:
        return self._tx(lambda db: self._get(db, cid, cur))

    def spend(self, cid, cur, amount, route):
        """Deduct `amount` if the balance covers it; the new balance, or None."""

        def run(db):
            bal = self._get(db, cid, cur)
            if bal < amount:
                return None
            self._add(db, cid, cur, -amount, 'spend', route)
            return bal - amount

        return self._tx(run)

    def credit_and_spend(self, cid, cur, units, pi_id, amount, route):
        """PROC-8: credit the top-up keyed by its PaymentIntent (once ever), then deduct.
        Returns (credited_now, balance after the spend or None when it does not cover)."""

        def run(db):
            credited = db.execute("SELECT 1 FROM journal WHERE kind = 'topup' AND ref = ?", (pi_id,)).fetchone() is None
            if credited:
                if self._get(db, cid, cur) + units > MAX_UNITS:
                    raise PaymentError('top_up_above_maximum')
                self._add(db, cid, cur, units, 'topup', pi_id)
            bal = self._get(db, cid, cur)
            if bal < amount:
                return credited, None
            self._add(db, cid, cur, -amount, 'spend', route)
            return credited, bal - amount

        return self._tx(run)

    def restore(self, cid, cur, amount, ref) -> int:
        def run(db):
            self._add(db, cid, cur, amount, 'restore', ref)
            return self._get(db, cid, cur)

        return self._tx(run)

    def credited(self, pi_id) -> bool:
        return self._tx(lambda db: db.execute("SELECT 1 FROM journal WHERE kind = 'topup' AND ref = ?", (pi_id,)).fetchone() is not None)

    def idem_get(self, cid, key):
        return self._tx(lambda db: db.execute('SELECT units, currency, payment_intent FROM idempotency WHERE client_id = ? AND key = ?', (cid, key)).fetchone())

    def idem_put(self, cid, key, units, cur):
        self._tx(lambda db: db.execute('INSERT OR IGNORE INTO idempotency (client_id, key, units, currency) VALUES (?, ?, ?, ?)', (cid, key, units, cur)))

    def idem_set_pi(self, cid, key, pi_id):
        self._tx(lambda db: db.execute('UPDATE idempotency SET payment_intent = ? WHERE client_id = ? AND key = ?', (pi_id, cid, key)))

    def record_started(self, pi_id, cid, cur, units):
        self._tx(lambda db: db.execute('INSERT OR IGNORE INTO started VALUES (?, ?, ?, ?)', (pi_id, cid, cur, units)))

    def started(self, pi_id):
        return self._tx(lambda db: db.execute('SELECT client_id, currency, units FROM started WHERE payment_intent = ?', (pi_id,)).fetchone())


# ---------------------------------------------------------------- the server

class Config:
    def __init__(self, args):
        self.stripe = Stripe(args.stripe_url, args.stripe_key)
        self.publishable_key = args.publishable_key
        self.secret = os.environ.get('STRIPE402_SERVER_SECRET', '')
        if len(self.secret.encode('utf-8')) < 32:  # CID-2
            sys.exit('STRIPE402_SERVER_SECRET must be at least 32 bytes')
        self.offers = [parse_offer(o) for o in args.offer] or [parse_offer('usd:100:50000:1000000')]
        if len({o['currency'] for o in self.offers}) != len(self.offers):
            sys.exit('two offers share a currency')
        self.return_url = args.return_url
        self.deployment = hmac.new(self.secret.encode(), b'stripe402 deployment id v1', hashlib.sha256).hexdigest()[:24]
        self.ledger = Ledger(args.db)
        self.topup_locks: dict = {}
        self.topup_locks_guard = threading.Lock()

    def client_id(self, fingerprint: str) -> str:  # CID-1
        return hmac.new(self.secret.encode('utf-8'), fingerprint.encode('utf-8'), hashlib.sha256).hexdigest()

    def topup_lock(self, cid, cur) -> threading.Lock:  # PROC-7
        with self.topup_locks_guard:
            return self.topup_locks.setdefault((cid, cur), threading.Lock())


def parse_offer(text: str) -> dict:
    parts = text.split(':')
    if len(parts) not in (3, 4) or not CUR_RE.fullmatch(parts[0]):
        sys.exit(f'bad --offer {text!r}: currency:amount:minTopUp[:maxTopUp]')
    offer = {'scheme': 'stripe', 'currency': parts[0], 'amount': int(parts[1]), 'minTopUp': int(parts[2])}
    if len(parts) == 4:
        offer['maxTopUp'] = int(parts[3])
    step = charge_step(offer['currency'])
    ok = 1 <= offer['amount'] <= offer['minTopUp'] <= offer.get('maxTopUp', MAX_UNITS) <= MAX_UNITS  # MSG-3, MSG-7
    ok = ok and all(charge_for(offer[k], offer['currency']) % step == 0 for k in ('minTopUp', 'maxTopUp') if k in offer)  # UNIT-7
    if not ok:
        sys.exit(f'--offer {text!r} breaks MSG-7 or UNIT-7')
    return offer


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = 'stripe402-python'
    sys_version = ''
    config: Config

    def log_message(self, format, *args):  # quiet
        pass

    def __getattr__(self, name):
        # Any method the class does not name (PROPFIND, ...) is answered 405, never 501.
        if name.startswith('do_'):
            return self.other_method
        raise AttributeError(name)

    # ----- plumbing

    def drain_body(self):
        length = self.headers.get('Content-Length')
        if self.headers.get('Transfer-Encoding'):
            self.close_connection = True
            return
        if length:
            try:
                n = int(length)
            except ValueError:
                self.close_connection = True
                return
            if 0 < n <= 1_000_000:
                self.rfile.read(n)
            elif n > 0:
                self.close_connection = True

    def send(self, status: int, body: bytes | None, headers: dict, content_type='application/json'):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if self.headers.get('Origin'):  # ENC-12: every origin may read, and the stripe402 fields are exposed
            self.send_header('Access-Control-Allow-Origin', '*')
            self.send_header('Access-Control-Expose-Headers', 'payment-required, payment-response')
        payload = body or b''
        if body is not None:
            self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(payload)

    @staticmethod
    def b64(obj: dict) -> str:
        return base64.b64encode(json.dumps(obj, separators=(',', ':')).encode('utf-8')).decode('ascii')

    def route(self):
        target = urllib.parse.urlsplit(self.path)
        return target.path

    # ----- methods

    def do_GET(self):
        self.drain_body()
        path = self.route()
        if path == '/.well-known/stripe402':
            return self.discovery()
        if path in PAID_ROUTES:
            return self.paid(path)
        return self.send(404, json.dumps({'error': 'Not found.'}).encode(), {})

    def do_OPTIONS(self):
        self.drain_body()
        path = self.route()
        if self.headers.get('Access-Control-Request-Method'):  # ENC-14: preflight, no payment needed
            self.send_response(204)
            self.send_header('Access-Control-Allow-Origin', '*')
            self.send_header('Access-Control-Allow-Methods', 'GET')
            self.send_header('Access-Control-Allow-Headers', 'payment')
            self.send_header('Access-Control-Max-Age', '600')
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        if path in PAID_ROUTES:
            return self.send(204, None, {'Allow': 'GET, OPTIONS'})
        return self.send(404, json.dumps({'error': 'Not found.'}).encode(), {})

    def other_method(self):
        self.drain_body()
        path = self.route()
        if path in PAID_ROUTES or path == '/.well-known/stripe402':
            # PAY-2: a HEAD (or any other method) of a paid GET is refused with 405.
            return self.send(405, json.dumps({'error': 'Method not allowed.'}).encode(), {'Allow': 'GET, OPTIONS'})
        return self.send(404, json.dumps({'error': 'Not found.'}).encode(), {})

    do_HEAD = other_method
    do_POST = other_method
    do_PUT = other_method
    do_DELETE = other_method
    do_PATCH = other_method

    # ----- discovery (Section 12)

    def discovery(self):
        cfg = self.config
        routes = []
        for path, info in PAID_ROUTES.items():
            for o in cfg.offers:
                r = {'method': 'GET', 'path': path, 'amount': o['amount'], 'currency': o['currency'], 'minTopUp': o['minTopUp']}
                if 'maxTopUp' in o:
                    r['maxTopUp'] = o['maxTopUp']
                r['description'] = info['description']
                routes.append(r)
        doc = {'stripe402Version': 1, 'publishableKey': cfg.publishable_key, 'routes': routes}
        self.send(200, json.dumps(doc).encode(), {'Access-Control-Allow-Origin': '*', 'Cache-Control': 'public, max-age=60'})

    # ----- paid routes (Section 8)

    def challenge(self, path: str, error: str | None = None) -> dict:
        info = PAID_ROUTES[path]
        accepts = [dict(o, publishableKey=self.config.publishable_key, description=info['description']) for o in self.config.offers]
        msg = {'stripe402Version': 1, 'resource': {'url': path, 'description': info['description'], 'mimeType': info['mimeType']}, 'accepts': accepts}
        if error:
            msg['error'] = error
        return msg

    def answer_402(self, path, code, client_id='', credits=0, currency=None, extra=None):
        challenge = self.challenge(path, code)
        response = {'success': False, 'creditsRemaining': credits, 'clientId': client_id, 'error': MESSAGES[code], 'errorCode': code}
        if currency:
            response['currency'] = currency
        response.update(extra or {})
        self.send(402, json.dumps(challenge).encode(), {
            'Cache-Control': 'no-store',
            'payment-required': self.b64(challenge),
            'payment-response': self.b64(response),
        })

    def answer_503(self):  # ERR-5, ERR-9: no payment-required, no payment-response
        self.send(503, json.dumps({'error': 'The service is temporarily unavailable; try again shortly.'}).encode(),
                  {'Retry-After': '2', 'Cache-Control': 'no-store'})

    def paid(self, path):
        values = self.headers.get_all('payment') or []
        if not values:  # PROC-1
            challenge = self.challenge(path)
            return self.send(402, json.dumps(challenge).encode(), {'Cache-Control': 'no-store', 'payment-required': self.b64(challenge)})
        state = {'client_id': '', 'currency': None}
        try:
            self.process(path, values, state)
        except PaymentError as err:
            cid, cur = state['client_id'], state['currency']
            credits = self.config.ledger.balance(cid, cur) if cid and cur else 0
            self.answer_402(path, err.code, cid, credits, cur, err.extra)
        except StripeUnavailable:
            self.answer_503()
        except sqlite3.Error:
            self.answer_503()
        except Exception as exc:  # a bug of this server, never the client's doing
            text = str(exc) if NAIVE_JSON else 'The server failed to process this request.'
            self.send(500, json.dumps({'error': text}).encode(), {'Cache-Control': 'no-store'})

    def process(self, path, values, state):
        cfg = self.config
        # Step 1 (PROC-2): ENC-8, ENC-9, ENC-3..7, MSG-1, members, currency.
        if len(values) != 1:
            raise PaymentError('invalid_payment')
        try:
            payload = decode_header_value(str(values[0]))
        except Invalid:
            raise PaymentError('invalid_payment') from None
        validate_payload(payload)
        if 'currency' in payload:
            offer = next((o for o in cfg.offers if o['currency'] == payload['currency']), None)
            if offer is None:
                raise PaymentError('currency_not_accepted')
        else:
            offer = cfg.offers[0]
        cur, amount = offer['currency'], offer['amount']
        state['currency'] = cur
        pm_id = payload.get('paymentMethodId')
        given_cid = payload.get('clientId')
        if given_cid:
            state['client_id'] = given_cid

        # Step 2: resume (AUTH-2).
        if 'paymentIntentId' in payload:
            return self.resume(path, payload, offer, state)

        # Step 3 (PROC-3).
        if given_cid:
            left = cfg.ledger.spend(given_cid, cur, amount, path)
            if left is not None:
                return self.serve(path, given_cid, cur, amount, left)
            if not pm_id:
                raise PaymentError('insufficient_credits')

        # Step 4 (PROC-4).
        cid = self.identify(pm_id)
        state['client_id'] = cid
        left = cfg.ledger.spend(cid, cur, amount, path)
        if left is not None:
            return self.serve(path, cid, cur, amount, left)

        # Step 5 (PROC-5, UNIT-7, UNIT-8, PROC-18).
        units = payload.get('topUpAmount', offer['minTopUp'])
        if units < offer['minTopUp'] or units < amount:
            raise PaymentError('top_up_below_minimum')
        if 'maxTopUp' in offer and units > offer['maxTopUp']:
            raise PaymentError('top_up_above_maximum')
        charge = charge_for(units, cur)
        if charge % charge_step(cur):
            raise PaymentError('invalid_payment')
        if charge > MAX_STRIPE_CHARGE:
            raise PaymentError('top_up_above_maximum')
        if cfg.ledger.balance(cid, cur) + units > MAX_UNITS:
            raise PaymentError('top_up_above_maximum')

        # Step 6 (PROC-6, PROC-7, PROC-12, PROC-15), one top-up per client id and currency at a time.
        with cfg.topup_lock(cid, cur):
            left = cfg.ledger.spend(cid, cur, amount, path)  # PROC-7: check the balance again after waiting
            if left is not None:
                return self.serve(path, cid, cur, amount, left)
            key = payload.get('idempotencyKey')
            found = False
            if key is not None:
                record = cfg.ledger.idem_get(cid, key)
                if record is not None:
                    found = True
                    r_units, r_cur, r_pi = record
                    if r_units != units or r_cur != cur:
                        raise PaymentError('invalid_payment')
                    if r_pi and cfg.ledger.credited(r_pi):
                        raise PaymentError('insufficient_credits')  # the key's top-up has happened
                else:
                    cfg.ledger.idem_put(cid, key, units, cur)
                stripe_key = f'stripe402:{cid}:{key}'
            else:
                stripe_key = f'stripe402:{cid}:{uuid.uuid4()}'
            params = {
                'amount': charge,
                'currency': cur,
                'payment_method': pm_id,
                'confirm': True,
                'payment_method_types': ['card'],
                'metadata': {'stripe402_client_id': cid, 'stripe402_units': str(units), 'stripe402_deployment': cfg.deployment},
            }
            if key is not None:
                params['metadata']['stripe402_idempotency_key'] = key
            if cfg.return_url:
                params['return_url'] = cfg.return_url
            status, body = cfg.stripe.request('POST', '/v1/payment_intents', params, idempotency_key=stripe_key)
            if status >= 400:
                err = body.get('error') or {}
                pi = err.get('payment_intent') or {}
                if key is not None and pi.get('id'):
                    cfg.ledger.idem_set_pi(cid, key, pi['id'])
                raise PaymentError('card_declined' if err.get('type') == 'card_error' else 'payment_failed')
            pi_id = body.get('id', '')
            if key is not None and pi_id:
                cfg.ledger.idem_set_pi(cid, key, pi_id)
            pi_status = body.get('status')
            if pi_status == 'requires_action':
                cfg.ledger.record_started(pi_id, cid, cur, units)
                raise PaymentError('authentication_required', self.auth_extra(body))
            if pi_status != 'succeeded':
                raise PaymentError('payment_failed')
            if body.get('amount') != charge or body.get('currency') != cur:
                raise PaymentError('payment_failed')
            # Step 7 (PROC-8).
            credited_now, left = cfg.ledger.credit_and_spend(cid, cur, units, pi_id, amount, path)
            if left is None:
                raise PaymentError('insufficient_credits')
            # PROC-9: a created PaymentIntent is reported always; a found one only when this request credited it.
            charged = credited_now or not found
            return self.serve(path, cid, cur, amount, left, pi_id if charged else None, charge if charged else None)

    @staticmethod
    def auth_extra(pi: dict) -> dict:
        extra = {'paymentIntentId': pi.get('id', '')}
        url = ((pi.get('next_action') or {}).get('redirect_to_url') or {}).get('url')
        if isinstance(url, str) and re.match(r'https?://', url):
            extra['nextActionUrl'] = url
        return extra

    def identify(self, pm_id: str) -> str:
        """PROC-4, CID-6: the client id of a card PaymentMethod with a fingerprint."""
        status, pm = self.config.stripe.request('GET', f'/v1/payment_methods/{urllib.parse.quote(pm_id)}')
        if status >= 400:
            raise PaymentError('invalid_payment')
        card = pm.get('card') if pm.get('type') == 'card' else None
        fingerprint = card.get('fingerprint') if isinstance(card, dict) else None
        if not isinstance(fingerprint, str) or not fingerprint:
            raise PaymentError('invalid_payment')
        return self.config.client_id(fingerprint)

    def resume(self, path, payload, offer, state):
        """AUTH-2, AUTH-3, SEC-9."""
        cfg = self.config
        cur, amount = offer['currency'], offer['amount']
        cid = self.identify(payload['paymentMethodId']) if 'paymentMethodId' in payload else payload['clientId']
        state['client_id'] = cid
        pi_id = payload['paymentIntentId']
        started = cfg.ledger.started(pi_id)
        if started is None or started[0] != cid or started[1] != cur:
            raise PaymentError('invalid_payment')  # SEC-9: not a top-up this server started for this client and currency
        status, pi = cfg.stripe.request('GET', f'/v1/payment_intents/{urllib.parse.quote(pi_id)}')
        if status >= 400:
            raise PaymentError('invalid_payment')
        meta = pi.get('metadata') or {}
        units_text = meta.get('stripe402_units')
        if meta.get('stripe402_client_id') != cid or not isinstance(units_text, str) or not re.fullmatch(r'[1-9][0-9]*', units_text):
            raise PaymentError('invalid_payment')
        units = int(units_text)
        if 'topUpAmount' in payload and payload['topUpAmount'] != units:
            raise PaymentError('invalid_payment')
        if pi.get('currency') != cur or pi.get('amount') != charge_for(units, cur):
            raise PaymentError('invalid_payment')
        pi_status = pi.get('status')
        if pi_status == 'requires_action':
            raise PaymentError('authentication_required', self.auth_extra(pi))
        if pi_status != 'succeeded':
            raise PaymentError('payment_failed')
        with cfg.topup_lock(cid, cur):
            credited_now, left = cfg.ledger.credit_and_spend(cid, cur, units, pi_id, amount, path)
        if left is None:
            raise PaymentError('insufficient_credits')
        return self.serve(path, cid, cur, amount, left, pi_id if credited_now else None, charge_for(units, cur) if credited_now else None)

    def serve(self, path, cid, cur, amount, left, charge_id=None, charge_amount=None):
        """Step 8 and PROC-9, PROC-10."""
        fails = PAID_ROUTES[path]['fails']
        status, body = (500, {'error': 'The joke machine is out of order.'}) if fails else (200, JOKE)
        if status >= 500:
            left = self.config.ledger.restore(cid, cur, amount, f'restore:{uuid.uuid4()}')
        response = {'success': True, 'creditsRemaining': left, 'clientId': cid, 'currency': cur}
        if charge_id:
            response['chargeId'] = charge_id
            response['chargeAmount'] = charge_amount
        self.send(status, json.dumps(body).encode(), {'Cache-Control': 'no-store', 'payment-response': self.b64(response)})


def main():
    ap = argparse.ArgumentParser(description='A stripe402 server written from the specification alone.')
    ap.add_argument('--port', type=int, default=int(os.environ.get('PORT', '0')))
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--stripe-url', default=os.environ.get('STRIPE_API_BASE', 'https://api.stripe.com'))
    ap.add_argument('--stripe-key', default=os.environ.get('STRIPE_SECRET_KEY', ''))
    ap.add_argument('--publishable-key', default=os.environ.get('STRIPE_PUBLISHABLE_KEY', ''))
    ap.add_argument('--offer', action='append', default=[], help='currency:amount:minTopUp[:maxTopUp], units')
    ap.add_argument('--return-url', default='https://example.com/stripe402/authenticated')
    ap.add_argument('--db', default=':memory:', help='SQLite database file for the ledger')
    ap.add_argument('--defect', choices=['naive-json'], help='a deliberate defect, for the test that the suite catches it')
    args = ap.parse_args()
    global NAIVE_JSON
    NAIVE_JSON = args.defect == 'naive-json'
    if not re.fullmatch(r'pk_(test|live)_[A-Za-z0-9_]+', args.publishable_key):
        sys.exit('--publishable-key must be a Stripe publishable key')
    Handler.config = Config(args)
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    print(f'listening http://{args.host}:{httpd.server_address[1]}', flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
