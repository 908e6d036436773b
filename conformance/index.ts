/**
 * @stripe402/conformance: the black-box conformance suite as a library. The
 * runner (`runConformance`) returns the JSON report that the `conformance`
 * command writes; the reporters turn it into text, JUnit XML, an SVG badge
 * and a shields.io endpoint. The suite imports only @stripe402/core: it
 * judges any server over HTTP, whatever it is written in.
 *
 * @module @stripe402/conformance
 */
export { runConformance, listChecks, selectChecks, exitCodeOf, reportFails, ConformanceError, DEFAULT_CARDS } from './runner.ts';
export type { ConformanceOptions, ProgressEvent, CheckInfo } from './runner.ts';
export { main, parseCards, type CommandIO } from './command.ts';
export { renderText, type TextOptions } from './report/text.ts';
export { renderJUnit } from './report/junit.ts';
export { renderBadgeSvg, shieldsEndpoint, badgeContent, type BadgeContent } from './report/badge.ts';
export type { Level, Severity } from './checks/types.ts';
export {
  stripeMockFixtures,
  startStripeMock,
  runStripeMockFixturesCli,
  STRIPE_MOCK_FINGERPRINT,
  type StripeMockFixtureOptions,
  type StripeMockFixtures,
  type RunningStripeMock,
} from './stripe-mock.ts';
