/** Base units in one BLY: amounts are integers of these, never fractions. */
export const BASE_UNITS_PER_BLY = 10n ** 18n
