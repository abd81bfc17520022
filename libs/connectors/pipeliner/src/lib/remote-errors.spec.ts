import { forwardedHeaders, missingFields, parseRemoteBody, remoteError, unusableAnswer } from './remote-errors';

const validation422 = {
  success: false,
  http_status: 422,
  code: 40000,
  name: 'ERROR_ENTITY_VALIDATION',
  message: "\nNon-null field 'name' is null or empty.",
  entity_id: null,
  entity_name: 'Step',
  entity_errors: [{ code: 119, name: 'ERROR_PARAMETER_MISSING', message: "Non-null field 'name' is null or empty." }],
  field_errors: [
    {
      field_id: 'f1',
      field_name: 'name',
      name: 'ERROR_FIELD_VALIDATION',
      code: 40002,
      errors: [{ code: 119, name: 'ERROR_PARAMETER_MISSING', message: "Non-null field 'name' is null or empty.", field_id: 'f1', field_name: 'name' }],
    },
  ],
  step_checklist_errors: [],
  entity_index: null,
};

const response = (status: number, body: string, headers: Record<string, string | string[]> = {}) => ({ status, headers, bodyText: body });

describe('remoteError', () => {
  it.each([
    [400, { success: false, http_status: 400, code: 117, name: 'ERROR_PARAMETER_INVALID', message: 'Missing or invalid JSON data.' }, 'Missing or invalid JSON data.'],
    [404, { success: false, http_status: 404, code: 2006, name: 'ERROR_UNKNOWN_TYPE', message: 'cannot determine entity type from Contact' }, 'cannot determine entity type from Contact'],
    [404, { status: 404, message: 'The requested URL was not found on the server.', errorcode: null, traceback: null }, 'The requested URL was not found on the server.'],
    [401, { success: false, http_status: 401, message: 'Unauthorized' }, 'Unauthorized'],
    [500, { success: false, http_status: 500, message: 'boom' }, 'boom'],
    [503, {}, 'Pipeliner answered HTTP 503 without an error message'],
  ])('mirrors %i with the message of the body', (status, body, message) => {
    const error = remoteError(response(status, JSON.stringify(body)));
    expect(error.statusCode).toBe(status);
    expect(error.body).toMatchObject({ statusCode: status, message, truto_is_remote_error: true, raw_response: body });
    expect(error.body.truto_error_insight?.remote_error).toBeDefined();
  });

  it('names missing fields of a 422 and trims the leading newline', () => {
    const error = remoteError(response(422, JSON.stringify(validation422)));
    expect(error.message).toBe("Non-null field 'name' is null or empty.");
    expect(error.body.error).toBe('Unprocessable Entity');
    expect(error.body.truto_error_insight?.missing_required_body_fields?.value).toEqual(['name']);
  });

  it('flags 429 as a rate limit and forwards Retry-After and rate-limit headers only', () => {
    const error = remoteError(
      response(429, '', {
        'retry-after': '7',
        'x-ratelimit-remaining': '0',
        'set-cookie': ['a=b'],
        'www-authenticate': 'Basic realm="restapi"',
        authorization: 'x',
        'content-type': 'text/plain',
      }),
    );
    expect(error.statusCode).toBe(429);
    expect(error.headers).toEqual({ 'retry-after': '7', 'x-ratelimit-remaining': '0' });
    expect(error.body.truto_error_insight?.rate_limit_error).toBeDefined();
    expect(error.body.raw_response).toBe('');
  });

  it('keeps a non-JSON body as text', () => {
    const error = remoteError(response(502, '<html>Bad gateway</html>'));
    expect(error.body.raw_response).toBe('<html>Bad gateway</html>');
  });

  it('answers 502 for a non-error status that is not 2xx', () => {
    expect(remoteError(response(302, '')).statusCode).toBe(502);
  });
});

describe('helpers', () => {
  it('parseRemoteBody parses JSON and leaves text alone', () => {
    expect(parseRemoteBody('{"a":1}')).toEqual({ a: 1 });
    expect(parseRemoteBody('{"a":')).toBe('{"a":');
    expect(parseRemoteBody('  ')).toBe('');
  });

  it('missingFields ignores bodies that are not validation errors', () => {
    expect(missingFields('text')).toEqual([]);
    expect(missingFields({ field_errors: [{ field_name: 'percent', errors: [{ code: 40003, message: 'out of range' }] }] })).toEqual([]);
  });

  it('forwardedHeaders joins repeated values', () => {
    expect(forwardedHeaders({ headers: { 'RateLimit-Limit': ['10', '20'] } })).toEqual({ 'ratelimit-limit': '10, 20' });
  });

  it('unusableAnswer is a remote 502 with the raw body', () => {
    const error = unusableAnswer(response(201, 'not json'), 'its body is not a JSON object');
    expect(error.statusCode).toBe(502);
    expect(error.body).toMatchObject({ truto_is_remote_error: true, raw_response: 'not json' });
    expect(error.message).toBe('Pipeliner answered HTTP 201 but its body is not a JSON object');
  });
});
