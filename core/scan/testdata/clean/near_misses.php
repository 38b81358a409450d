<?php
/**
 * Near misses: code a plugin really writes, which the rules must not flag.
 * Reads `$_POST['action']` (quoted in a docblock, in backticks).
 */
function demo_plugin_handle() {
	$action = isset( $_POST['action'] ) ? sanitize_key( wp_unslash( $_POST['action'] ) ) : '';
	$token  = base64_decode( get_option( 'demo_token' ) );
	$clean  = preg_replace( '/[^a-z0-9_\-]/i', '', $action );
	$accent = chr( 195 ) . chr( 128 );
	$body   = gzinflate( substr( $response, 10 ) );
	exec( 'true' ); // a fixed command, no request input
	return array( $clean, $token, $accent, $body );
}
